"""The journal: every event received, every rule's verdict, every action with its result.

Append-only but for two states that move: an event's status and an action's status. The
unique index on ``actions.key`` is what makes a retried job unable to act twice. Snapshots of
records live here too: they are how the bridge knows what changed (the CRMs send only ids).
SQLite file by default, any SQLAlchemy URL (PostgreSQL) by ``BRIDGE_JOURNAL_URL``.
"""

from __future__ import annotations

import os
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
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from bridge import clock

DEFAULT_URL = "sqlite:///var/journal.db"


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


class Base(DeclarativeBase):
    """Declarative base of the journal's tables."""


class EventRow(Base):
    """An event as received: accepted, rejected at the door, processed or failed."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("tenant", "dedup_key"),)

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
    reason: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[Any] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DecisionRow(Base):
    """One rule's verdict on one event."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)


class ActionRow(Base):
    """One action, keyed for idempotency: pending before the CRM call, done after it."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    record_kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    stay: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[Any] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
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
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)

    __table_args__ = (Index("ix_changes_record", "tenant", "kind", "record_id"),)


class SnapshotRow(Base):
    """The last state of a record the bridge saw, and since when it stands in its stage."""

    __tablename__ = "snapshots"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    stay: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage_since: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    data: Mapped[Any] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)


class Journal:
    """Access to the journal database."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get("BRIDGE_JOURNAL_URL") or DEFAULT_URL
        self.engine = _engine(self.url)
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def record_event(self, **values: Any) -> tuple[int, bool]:
        """Insert an event; returns ``(id, created)``, ``created`` False for a known dedup key."""
        with self.session() as s:
            row = EventRow(**values)
            s.add(row)
            try:
                s.commit()
                return row.id, True
            except IntegrityError:
                s.rollback()
        with self.session() as s:
            found = s.scalars(
                select(EventRow).where(
                    EventRow.tenant == values["tenant"], EventRow.dedup_key == values["dedup_key"]
                )
            ).one()
            return found.id, False

    def event_by_key(self, tenant: str, dedup_key: str) -> EventRow | None:
        """The event journaled under a dedup key, if any."""
        with self.session() as s:
            query = select(EventRow).where(
                EventRow.tenant == tenant, EventRow.dedup_key == dedup_key
            )
            return s.scalars(query).first()

    def event(self, event_id: int) -> EventRow | None:
        """An event row by id."""
        with self.session() as s:
            return s.get(EventRow, event_id)

    def finish_event(self, event_id: int, status: str, reason: str = "") -> None:
        """Set an event's final status (processed, failed, skipped)."""
        with self.session() as s:
            row = s.get(EventRow, event_id)
            row.status, row.reason, row.processed_at = status, reason, clock.utcnow()
            s.commit()

    def add_decisions(self, event_id: int, decisions: list[tuple[str, str, str]]) -> None:
        """Journal the rules' verdicts ``(rule, verdict, detail)`` on an event."""
        with self.session() as s:
            s.add_all(
                DecisionRow(event_id=event_id, rule=r, verdict=v, detail=d) for r, v, d in decisions
            )
            s.commit()

    def claim_action(self, key: str, **values: Any) -> tuple[ActionRow, bool]:
        """Insert the action as pending; returns ``(row, created)``.

        ``created`` is False when a previous attempt left the row (done, failed, or pending
        after a crash between the CRM call and this journal).
        """
        with self.session() as s:
            existing = s.scalars(select(ActionRow).where(ActionRow.key == key)).first()
            if existing:
                return existing, False
            row = ActionRow(key=key, status="pending", **values)
            s.add(row)
            try:
                s.commit()
                return row, True
            except IntegrityError:  # another worker claimed it between our read and write
                s.rollback()
                return s.scalars(select(ActionRow).where(ActionRow.key == key)).one(), False

    def settle_action(self, key: str, status: str, result: Any = None, error: str = "") -> None:
        """Record an action's outcome (done, failed) and count the attempt."""
        with self.session() as s:
            row = s.scalars(select(ActionRow).where(ActionRow.key == key)).one()
            row.status, row.error, row.updated_at = status, error, clock.utcnow()
            row.result = result if result is not None else row.result
            row.attempts += 1
            s.commit()

    def snapshot(self, tenant: str, kind: str, record_id: str) -> SnapshotRow | None:
        """The last stored snapshot of a record."""
        with self.session() as s:
            return s.get(SnapshotRow, (tenant, kind, record_id))

    def store_snapshot(
        self, tenant: str, kind: str, record_id: str, stage: str | None, data: dict, at: datetime
    ) -> SnapshotRow:
        """Store a record's new state; a new stage starts a new stay."""
        with self.session() as s:
            row = s.get(SnapshotRow, (tenant, kind, record_id))
            if row is None:
                row = SnapshotRow(tenant=tenant, kind=kind, record_id=record_id, version=0, stay=0)
                s.add(row)
            row.version += 1
            if row.stage != stage or row.version == 1:
                row.stay, row.stage, row.stage_since = row.version, stage, at
            row.data, row.updated_at = data, at
            s.commit()
            return row

    def record_changes(
        self, tenant: str, kind: str, record_id: str, fields: list[str], at: datetime
    ) -> None:
        """Append the fields that changed between two snapshots."""
        if not fields:
            return
        with self.session() as s:
            s.add_all(
                ChangeRow(tenant=tenant, kind=kind, record_id=record_id, field=f, at=at)
                for f in fields
            )
            s.commit()

    def change_counts(self, tenant: str, kind: str, record_id: str) -> dict[str, int]:
        """Field -> how many times it changed."""
        with self.session() as s:
            rows = s.execute(
                select(ChangeRow.field, func.count())
                .where(
                    ChangeRow.tenant == tenant,
                    ChangeRow.kind == kind,
                    ChangeRow.record_id == record_id,
                )
                .group_by(ChangeRow.field)
            )
            return {field: count for field, count in rows}

    def emails_sent(self, tenant: str, kind: str, record_id: str, stay: str) -> frozenset[str]:
        """Templates e-mailed for a record during one stay."""
        with self.session() as s:
            rows = s.scalars(
                select(ActionRow).where(
                    ActionRow.tenant == tenant,
                    ActionRow.record_kind == kind,
                    ActionRow.record_id == record_id,
                    ActionRow.kind == "send_email",
                    ActionRow.status == "done",
                    ActionRow.stay == stay,
                )
            )
            return frozenset(str((r.result or {}).get("template")) for r in rows)

    def snapshots(self, tenant: str, kind: str) -> dict[str, SnapshotRow]:
        """Every snapshot of a tenant's records of one kind (for sweeps), by record id."""
        with self.session() as s:
            rows = s.scalars(
                select(SnapshotRow).where(SnapshotRow.tenant == tenant, SnapshotRow.kind == kind)
            )
            return {row.record_id: row for row in rows}

    def entry(self, event_id: int) -> dict[str, Any] | None:
        """One event with its decisions and actions (``bridge explain``), or None."""
        with self.session() as s:
            row = s.get(EventRow, event_id)
            return _with_children(s, row) if row is not None else None

    def recent(self, limit: int = 20, tenant: str | None = None) -> list[dict[str, Any]]:
        """The latest events with their decisions and actions, newest first."""
        with self.session() as s:
            query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
            if tenant:
                query = query.where(EventRow.tenant == tenant)
            return [_with_children(s, row) for row in s.scalars(query)]


def _with_children(s: Session, row: EventRow) -> dict[str, Any]:
    decisions = s.scalars(select(DecisionRow).where(DecisionRow.event_id == row.id)).all()
    actions = s.scalars(select(ActionRow).where(ActionRow.event_id == row.id)).all()
    return {"event": row, "decisions": list(decisions), "actions": list(actions)}


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(url.removeprefix("sqlite:///"))), exist_ok=True)
    engine = create_engine(url)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    # WAL lets the web process append events while a worker writes actions
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
