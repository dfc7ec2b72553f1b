"""The journal's schema, as Alembic migrations: created and upgraded by one explicit step.

``bridge migrate`` (or :func:`bridge.journal.migrate`) runs them; no process creates tables on
start, so a web process and a worker started together on a new database cannot race. A
database made by an older bridge with ``create_all`` (tables but no ``alembic_version``) is
stamped at the first revision, then upgraded.
"""
