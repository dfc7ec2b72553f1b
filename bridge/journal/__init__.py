"""The journal: every event received, every rule's verdict, every action with its result.

Append-only but for two states that move: an event's status and an action's status. The
unique index on ``actions.key`` is what makes a retried job unable to act twice. Snapshots of
records live here too: they are how the bridge knows what changed (the CRMs send only ids).
SQLite file by default, any SQLAlchemy URL (PostgreSQL) by ``BRIDGE_JOURNAL_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from bridge import clock
from bridge.errors import SchemaError
from bridge.journal.batch import BatchWrites, Settled, Snapshot
from bridge.journal.history import History, HistoryReads
from bridge.journal.tables import (
    ActionRow,
    Base,
    ChangeRow,
    DecisionRow,
    EventRow,
    SnapshotRow,
)
from bridge.models import Decision, Record

DEFAULT_URL = "sqlite:///var/journal.db"
GAVE_UP = "gave up after"
"""How the reason of a dead letter starts (an event that ran out of retries)."""

__all__ = [
    "ActionRow",
    "Base",
    "ChangeRow",
    "DecisionRow",
    "EventRow",
    "History",
    "Journal",
    "Settled",
    "Snapshot",
    "SnapshotRow",
    "migrate",
]


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config  # late: only the migrate step needs Alembic

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest schema revision this bridge knows."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config(None)).get_current_head())


def migrate(url: str | None = None) -> str:
    """Create or upgrade the journal's schema to this bridge's; returns the revision.

    A database whose tables were made by ``create_all`` (before migrations) is stamped at the
    first revision first, so that its data is kept.
    """
    from alembic import command

    engine = _engine(_url(url))
    with engine.begin() as connection:
        cfg = _alembic_config(connection)
        names = set(inspect(connection).get_table_names())
        if "events" in names and "alembic_version" not in names:
            command.stamp(cfg, FIRST_REVISION)
        command.upgrade(cfg, "head")
    engine.dispose()
    return head()


FIRST_REVISION = "0001"


def _url(url: str | None) -> str:
    return url or os.environ.get("BRIDGE_JOURNAL_URL") or DEFAULT_URL


class Journal(BatchWrites, HistoryReads):
    """Access to the journal database (its schema made by :func:`migrate`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = _url(url)
        self.engine = _engine(self.url)
        self._check_schema()
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def _check_schema(self) -> None:
        with self.engine.connect() as connection:
            try:
                found = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                version = found.scalar()
            except (OperationalError, ProgrammingError):
                version = None
        if version != head():
            where = mask_url(self.url)
            state = f"is at revision {version}" if version else "has no schema"
            raise SchemaError(
                f"the journal at {where} {state}, this bridge needs {head()}: "
                "run `bridge migrate` (once, before starting the bridge's processes)"
            )

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

    def event_by_entry(self, tenant: str, entry: str) -> EventRow | None:
        """The event journaled from a stream entry (the ingress answers with its id)."""
        with self.session() as s:
            query = select(EventRow).where(EventRow.tenant == tenant, EventRow.entry == entry)
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

    def add_decisions(
        self, event_id: int, decisions: Iterable[Decision], record: Record | None = None
    ) -> None:
        """Journal the rules' verdicts on an event, with the record they judged."""
        self.add_decisions_many((event_id, d, record) for d in decisions)

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
        self,
        tenant: str,
        kind: str,
        record_id: str,
        fields: list[str],
        at: datetime,
        client: Any = None,
    ) -> None:
        """Append the fields that changed between two snapshots (and whose client it is)."""
        if not fields:
            return
        who = client_key(client)
        with self.session() as s:
            s.add_all(
                ChangeRow(tenant=tenant, kind=kind, record_id=record_id, field=f, at=at, client=who)
                for f in fields
            )
            s.commit()

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

    def dead_letters(self, tenant: str | None = None) -> list[int]:
        """Events that ran out of retries (``failed`` after their last attempt), oldest first."""
        with self.session() as s:
            query = select(EventRow.id).where(
                EventRow.status == "failed", EventRow.reason.startswith(GAVE_UP)
            )
            if tenant:
                query = query.where(EventRow.tenant == tenant)
            return list(s.scalars(query.order_by(EventRow.id)))

    def failed(self, tenant: str | None = None, limit: int = 100) -> list[EventRow]:
        """Failed events, newest first: dead letters and permanent failures."""
        with self.session() as s:
            query = select(EventRow).where(EventRow.status == "failed")
            if tenant:
                query = query.where(EventRow.tenant == tenant)
            return list(s.scalars(query.order_by(EventRow.id.desc()).limit(limit)))

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


def client_key(client: Any) -> str | None:
    """How a record's client is kept with its changes (None: the record names no client)."""
    return str(client) if client not in (None, "", "0") else None


def mask_url(url: str) -> str:
    """A database URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


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
