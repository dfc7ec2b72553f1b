"""The journal's writes for a batch of events: a few transactions per batch, not per event.

A worker journals a whole batch of stream entries at once, and settles their actions and
snapshots at once; each method here is one transaction whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bridge import clock
from bridge.journal.tables import ActionRow, ChangeRow, DecisionRow, EventRow, SnapshotRow
from bridge.models import Decision, Record

PENDING = ("queued", "processing", "retrying")
"""Statuses of an event received and not yet finished."""


@dataclass(frozen=True)
class Snapshot:
    """A record's state as the journal keeps it between events (a detached copy)."""

    version: int
    stay: int
    stage: str | None
    stage_since: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Settled:
    """An action's outcome to write: ``done``, ``failed`` or ``pending`` (must wait)."""

    key: str
    status: str
    result: Any = None
    error: str = ""


class BatchWrites:
    """Mixin of :class:`bridge.journal.Journal`: the batch forms of its writes."""

    session: sessionmaker[Session]

    def journal_entries(self, tenant: str, entries: Sequence[dict[str, Any]]) -> list[EventRow]:
        """Journal stream entries as events, each once (a re-read entry finds its row).

        Each item holds the :class:`EventRow` values, ``entry`` (the stream entry id) included.
        """
        ids = [e["entry"] for e in entries]
        with self.session() as s:
            found = {
                row.entry: row
                for row in s.scalars(
                    select(EventRow).where(EventRow.tenant == tenant, EventRow.entry.in_(ids))
                )
            }
            new = [{"tenant": tenant, **e} for e in entries if e["entry"] not in found]
            if new:
                # one INSERT .. RETURNING for the batch, not a unit of work over its objects
                made = s.scalars(insert(EventRow).returning(EventRow), new).all()
                found.update({row.entry: row for row in made})
            s.commit()
            return [found[i] for i in ids]

    def replaying(self, ids: Iterable[int]) -> dict[int, EventRow]:
        """Events taken up again (replays of dead letters): their attempts start over."""
        ids = list(ids)
        with self.session() as s:
            s.execute(
                update(EventRow)
                .where(EventRow.id.in_(ids), EventRow.status == "failed")
                .values(status="processing", attempts=0)
            )
            s.commit()
        return self.events_by_id(ids)

    def events_by_id(self, ids: Iterable[int]) -> dict[int, EventRow]:
        """Events by id."""
        with self.session() as s:
            return {r.id: r for r in s.scalars(select(EventRow).where(EventRow.id.in_(list(ids))))}

    def add_decisions_many(self, rows: Iterable[tuple[int, Decision, Record | None]]) -> None:
        """Journal ``(event id, verdict, the record it judged)`` rows in one transaction."""
        values = [_decision_values(event_id, d, record) for event_id, d, record in rows]
        if not values:
            return
        with self.session() as s:
            # one executemany, not a unit of work over an object per row: a batch of 50
            # events judged by a pack of 15 rules is 750 rows
            s.execute(insert(DecisionRow), values)
            s.commit()

    def claim_actions(self, values: Sequence[dict[str, Any]]) -> dict[str, tuple[ActionRow, bool]]:
        """Insert actions as pending, each once by its key; ``key -> (row, created)``.

        ``created`` is False where an earlier attempt left the row (done, failed, or pending
        after a crash between the CRM's answer and this journal).
        """
        keys = [v["key"] for v in values]
        with self.session() as s:
            found = {r.key: r for r in s.scalars(select(ActionRow).where(ActionRow.key.in_(keys)))}
            new = [ActionRow(status="pending", **v) for v in values if v["key"] not in found]
            s.add_all(new)
            try:
                s.commit()
            except IntegrityError:  # another worker claimed some meanwhile: read them all back
                s.rollback()
                rows = s.scalars(select(ActionRow).where(ActionRow.key.in_(keys)))
                return {r.key: (r, False) for r in rows}
        out = {key: (row, False) for key, row in found.items()}
        out.update({row.key: (row, True) for row in new})
        return out

    def settle_many(self, outcomes: Iterable[Settled]) -> None:
        """Record actions' outcomes and count the attempt, in one transaction."""
        items = list(outcomes)
        if not items:
            return
        now = clock.utcnow()
        with self.session() as s:
            # an outcome without a result keeps the one an earlier attempt wrote
            for statement, with_result in ((_SETTLE_WITH_RESULT, True), (_SETTLE, False)):
                params = [
                    {"b_key": i.key, "b_status": i.status, "b_error": i.error, "b_now": now}
                    | ({"b_result": i.result} if with_result else {})
                    for i in items
                    if (i.result is not None) == with_result
                ]
                if params:
                    s.connection().execute(statement, params)
            s.commit()

    def snapshots_of(
        self, tenant: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], Snapshot]:
        """The last snapshots of records ``(kind, id)`` that have one."""
        refs = list(refs)
        if not refs:
            return {}
        wanted = set(refs)
        ids = {record_id for _, record_id in wanted}
        with self.session() as s:
            rows = s.scalars(
                select(SnapshotRow).where(
                    SnapshotRow.tenant == tenant, SnapshotRow.record_id.in_(ids)
                )
            )
            return {
                (r.kind, r.record_id): Snapshot(r.version, r.stay, r.stage, r.stage_since, r.data)
                for r in rows
                if (r.kind, r.record_id) in wanted
            }

    def pending_of(self, tenant: str, refs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The records ``(kind, id)`` with an event received and not yet finished (it reads
        the record afresh when its turn comes)."""
        wanted = set(refs)
        if not wanted:
            return set()
        ids = {record_id for _, record_id in wanted}
        with self.session() as s:
            rows = s.execute(
                select(EventRow.kind, EventRow.record_id).where(
                    EventRow.tenant == tenant,
                    EventRow.record_id.in_(ids),
                    EventRow.status.in_(PENDING),
                )
            )
            return {(kind, record_id) for kind, record_id in rows} & wanted

    def complete(
        self,
        tenant: str,
        snapshots: dict[tuple[str, str], Snapshot],
        changes: Iterable[tuple[str, str, str, datetime, str | None]],
        finished: Iterable[tuple[int, str, str]],
        decisions: Iterable[tuple[int, Decision, Record | None]] = (),
    ) -> None:
        """One transaction at the end of a batch: the records' new snapshots, the fields that
        changed ``(kind, id, field, at, client)``, the events' final ``(id, status,
        reason)`` and the verdicts of the events that are done ``(event id, verdict, the
        record it judged)``: an event that waits is judged again, and journaled once."""
        now = clock.utcnow()
        verdicts = [_decision_values(event_id, d, record) for event_id, d, record in decisions]
        changed = [
            {"tenant": tenant, "kind": k, "record_id": i, "field": f, "at": at, "client": c}
            for k, i, f, at, c in changes
        ]
        ends = [
            {"id": event_id, "status": status, "reason": reason, "processed_at": now}
            for event_id, status, reason in finished
        ]
        with self.session() as s:
            rows = _snapshot_rows(s, tenant, snapshots)
            for (kind, record_id), snap in snapshots.items():
                row = rows.get((kind, record_id)) or SnapshotRow(
                    tenant=tenant, kind=kind, record_id=record_id
                )
                row.version, row.stay, row.stage = snap.version, snap.stay, snap.stage
                row.stage_since, row.data, row.updated_at = snap.stage_since, snap.data, now
                s.add(row)
            if changed:
                s.execute(insert(ChangeRow), changed)
            if ends:
                s.execute(update(EventRow), ends)  # by primary key: one executemany
            if verdicts:
                s.execute(insert(DecisionRow), verdicts)
            s.commit()

    def count_attempt(self, event_ids: Iterable[int], reason: str) -> dict[int, int]:
        """One more failed attempt for each event (they wait); returns their counts."""
        ids = list(event_ids)
        with self.session() as s:
            s.execute(
                update(EventRow)
                .where(EventRow.id.in_(ids))
                .values(attempts=EventRow.attempts + 1, status="retrying", reason=reason)
            )
            s.commit()
            rows = s.execute(select(EventRow.id, EventRow.attempts).where(EventRow.id.in_(ids)))
            return {event_id: attempts for event_id, attempts in rows}


def _snapshot_rows(
    s: Session, tenant: str, snapshots: dict[tuple[str, str], Snapshot]
) -> dict[tuple[str, str], SnapshotRow]:
    """The stored rows of these snapshots, read in one query."""
    if not snapshots:
        return {}
    ids = {record_id for _, record_id in snapshots}
    query = select(SnapshotRow).where(SnapshotRow.tenant == tenant, SnapshotRow.record_id.in_(ids))
    return {(r.kind, r.record_id): r for r in s.scalars(query)}


_ACTIONS = ActionRow.__table__
_SETTLE = (
    update(_ACTIONS)
    .where(_ACTIONS.c.key == bindparam("b_key"))
    .values(
        status=bindparam("b_status"),
        error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
        attempts=_ACTIONS.c.attempts + 1,
    )
)
_SETTLE_WITH_RESULT = _SETTLE.values(result=bindparam("b_result"))


def _decision_values(event_id: int, d: Decision, record: Record | None) -> dict[str, Any]:
    seen: dict[str, Any] = dict.fromkeys(("record_kind", "record_id", "stage", "responsible"))
    if record is not None:
        seen = dict(record_kind=record.kind, record_id=record.id, stage=record.stage)
        seen["responsible"] = record.responsible
    return dict(
        event_id=event_id,
        rule=d.rule,
        verdict=d.verdict,
        detail=d.detail,
        breach=d.breach,
        due=d.due,
        at=clock.utcnow(),
        **seen,
    )
