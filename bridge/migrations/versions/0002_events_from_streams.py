"""Events journaled by the worker from the tenants' streams: each stream entry once; attempts
counted for dead letters; an index for the e-mails of a stay.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("entry", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_events_entry", ["tenant", "entry"], unique=True)
        batch.create_index("ix_events_record", ["tenant", "kind", "record_id"])
    with op.batch_alter_table("actions") as batch:
        batch.create_index(
            "ix_actions_record", ["tenant", "record_kind", "record_id", "kind", "stay"]
        )


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_index("ix_actions_record")
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_record")
        batch.drop_index("ix_events_entry")
        batch.drop_column("attempts")
        batch.drop_column("entry")
