"""The journal's tables: events, decisions, actions, changes, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bridge import clock
from bridge.masking import redact, redact_data


def _now() -> datetime:
    # through the module, so that a test's clock reaches the journal's defaults too
    return clock.utcnow()


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MaskedText(TypeDecorator):
    """Text stored with its phones, e-mail addresses and secrets masked (bridge/masking.py),
    whoever writes it: reasons, details, summaries and errors quote CRMs and their records."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return redact(value) if value else value


class MaskedJSON(TypeDecorator):
    """JSON stored with every string in it masked like :class:`MaskedText` (a record's
    snapshot holds its title and custom fields; an action's result its recipient)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return redact_data(value)


class Base(DeclarativeBase):
    """Declarative base of the journal's tables."""


class EventRow(Base):
    """An event as received: accepted, rejected at the door, processed or failed."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tenant", "dedup_key"),
        Index("ix_events_entry", "tenant", "entry", unique=True),
        Index("ix_events_record", "tenant", "kind", "record_id"),
        # the admin pages read a tenant's events by period
        Index("ix_events_tenant_received", "tenant", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    crm: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64), default="")
    type: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")
    record_id: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(MaskedText, default="")
    payload: Mapped[Any] = mapped_column(MaskedJSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    entry: Mapped[str | None] = mapped_column(String(40), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DecisionRow(Base):
    """One rule's verdict on one event, with the record as the rule saw it.

    ``breach`` (``missing``, ``overdue`` or empty) marks a broken rule; ``responsible`` and
    ``stage`` say whose record it was and where it stood; ``due`` is the deadline a
    ``scheduled`` verdict set. The admin pages' reports read these.
    """

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_breach", "breach"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(MaskedText, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    record_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    responsible: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    breach: Mapped[str] = mapped_column(String(16), default="")
    due: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ActionRow(Base):
    """One action, keyed for idempotency: pending before the CRM call, done after it."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_record", "tenant", "record_kind", "record_id", "kind", "stay"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    record_kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(MaskedText, default="")
    stay: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[Any] = mapped_column(MaskedJSON, default=dict)
    error: Mapped[str] = mapped_column(MaskedText, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)


class ChangeRow(Base):
    """A field of a record changed (from the diff of two snapshots): the record's history."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)

    __table_args__ = (
        Index("ix_changes_record", "tenant", "kind", "record_id"),
        Index("ix_changes_client", "tenant", "client"),
    )


class SnapshotRow(Base):
    """The last state of a record the bridge saw, and since when it stands in its stage."""

    __tablename__ = "snapshots"
    # the refusal report reads a tenant's records by when they entered their stage
    __table_args__ = (Index("ix_snapshots_tenant_stage_since", "tenant", "stage_since"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    stay: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage_since: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    data: Mapped[Any] = mapped_column(MaskedJSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
