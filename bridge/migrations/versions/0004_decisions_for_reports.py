"""What the admin pages' reports read: each verdict with the record it judged (kind, id,
responsible, stage), whether it means a broken rule (breach) and the deadline it set (due);
indexes for a tenant's events by period, breaches, and snapshots by stage entry.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("record_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("record_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("responsible", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("stage", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("breach", sa.String(length=16), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("due", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_decisions_breach", ["breach"])
    with op.batch_alter_table("events") as batch:
        batch.create_index("ix_events_tenant_received", ["tenant", "received_at"])
    with op.batch_alter_table("snapshots") as batch:
        batch.create_index("ix_snapshots_tenant_stage_since", ["tenant", "stage_since"])


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_index("ix_snapshots_tenant_stage_since")
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_tenant_received")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_index("ix_decisions_breach")
        for column in ("due", "breach", "stage", "responsible", "record_id", "record_kind"):
            batch.drop_column(column)
