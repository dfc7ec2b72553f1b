"""Alembic's environment: runs on the connection :func:`bridge.journal.migrate` hands it."""

from __future__ import annotations

from alembic import context

from bridge.journal import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
