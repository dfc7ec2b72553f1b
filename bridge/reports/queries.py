"""The journal read for reports: verdicts, changes, refusals, events with filters.

Kept apart from :mod:`bridge.journal` (which the pipeline writes through) so that the
reports can grow without touching the write path. Every query is scoped to one tenant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from bridge.journal import ActionRow, ChangeRow, DecisionRow, EventRow, Journal, SnapshotRow
from bridge.models import LOST, RecordRef
from bridge.regulations.engine import FIRED, SATISFIED, SCHEDULED
from bridge.reports.tables import Table
from bridge.reports.verdicts import Change, Judged, Period

TIMER_DUE = "timer.due"
NO_REASON = "не указана"
PAGE = 50


def judged(
    journal: Journal, tenant: str, period: Period, *, breaches_only: bool = False
) -> list[Judged]:
    """A tenant's verdicts of events received in ``period``, in time order.

    Without ``breaches_only``, the verdicts an SLA needs: scheduled, fired, satisfied, and
    every verdict of a timer (``not_matched`` for a timer means the record moved on).
    """
    query = (
        select(DecisionRow, EventRow)
        .join(EventRow, DecisionRow.event_id == EventRow.id)
        .where(EventRow.tenant == tenant)
        .where(EventRow.received_at >= period.since, EventRow.received_at < period.until)
        .order_by(EventRow.received_at, DecisionRow.id)
    )
    if breaches_only:
        query = query.where(DecisionRow.breach != "")
    else:
        verdicts = (SCHEDULED, FIRED, SATISFIED)
        query = query.where(DecisionRow.verdict.in_(verdicts) | (EventRow.type == TIMER_DUE))
    with journal.session() as s:
        return [_judged(d, e) for d, e in s.execute(query)]


def _judged(d: DecisionRow, e: EventRow) -> Judged:
    step = None
    if e.type == TIMER_DUE and e.subject:
        parts = e.subject.split("|")
        step = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
    return Judged(
        at=e.received_at,
        ref=RecordRef(d.record_kind or e.kind, d.record_id or e.record_id),
        rule=d.rule,
        verdict=d.verdict,
        breach=d.breach or "",
        due=d.due,
        step=step,
        responsible=d.responsible,
        stage=d.stage,
        event_id=e.id,
    )


def changes(journal: Journal, tenant: str, since: datetime) -> list[Change]:
    """A tenant's field changes since a moment, in time order."""
    query = (
        select(ChangeRow)
        .where(ChangeRow.tenant == tenant, ChangeRow.at >= since)
        .order_by(ChangeRow.at)
    )
    with journal.session() as s:
        return [Change(c.at, RecordRef(c.kind, c.record_id), c.field) for c in s.scalars(query)]


def refusals(journal: Journal, tenant: str, period: Period, field: str = "refusal_reason") -> Table:
    """Records lost in ``period`` by the reason their ``field`` gives (as the bridge saw last)."""
    query = select(SnapshotRow).where(
        SnapshotRow.tenant == tenant,
        SnapshotRow.stage_since >= period.since,
        SnapshotRow.stage_since < period.until,
    )
    with journal.session() as s:
        lost = [row.data for row in s.scalars(query) if (row.data or {}).get("outcome") == LOST]
    reasons = Counter(str((d.get("fields") or {}).get(field) or NO_REASON) for d in lost)
    rows = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return Table("refusals", "Причины отказов", ("Причина", "Сделок"), rows)


@dataclass(frozen=True)
class EventFilter:
    """What the journal page narrows events by (empty: any)."""

    tenant: str
    period: Period
    status: str = ""
    type: str = ""
    record_id: str = ""
    rule: str = ""
    breaches: bool = False
    offset: int = 0


def events(journal: Journal, f: EventFilter) -> tuple[list[EventRow], bool]:
    """One page of a tenant's events, newest first, and whether more follow."""
    query = _event_query(f).order_by(EventRow.id.desc()).offset(f.offset).limit(PAGE + 1)
    with journal.session() as s:
        rows = list(s.scalars(query))
    return rows[:PAGE], len(rows) > PAGE


def events_table(journal: Journal, f: EventFilter, limit: int = 10_000) -> Table:
    """The filtered events as a table (the journal page's export)."""
    query = _event_query(f).order_by(EventRow.id.desc()).limit(limit)
    with journal.session() as s:
        rows = [
            (
                e.id,
                e.received_at,
                e.source or e.crm,
                e.type,
                f"{e.kind} {e.record_id}".strip(),
                e.status,
                e.reason,
            )
            for e in s.scalars(query)
        ]
    columns = ("№", "Получено (UTC)", "Источник", "Тип", "Запись", "Статус", "Итог")
    return Table("journal", "Журнал событий", columns, rows)


def _event_query(f: EventFilter) -> Select[Any]:
    query = select(EventRow).where(
        EventRow.tenant == f.tenant,
        EventRow.received_at >= f.period.since,
        EventRow.received_at < f.period.until,
    )
    for column, value in ((EventRow.status, f.status), (EventRow.type, f.type)):
        if value:
            query = query.where(column == value)
    if f.record_id:
        query = query.where(EventRow.record_id == f.record_id)
    if f.rule or f.breaches:
        decided = select(DecisionRow.event_id)
        if f.rule:
            decided = decided.where(DecisionRow.rule == f.rule)
        if f.breaches:
            decided = decided.where(DecisionRow.breach != "")
        query = query.where(EventRow.id.in_(decided))
    return query


@dataclass(frozen=True)
class EventDetail:
    """One event opened: its decisions and actions (with the CRM's answers)."""

    event: EventRow
    decisions: list[DecisionRow]
    actions: list[ActionRow]


def event_detail(journal: Journal, tenant: str, event_id: int) -> EventDetail | None:
    """An event of the tenant with its decisions and actions, or None."""
    with journal.session() as s:
        event = s.get(EventRow, event_id)
        if event is None or event.tenant != tenant:
            return None
        decisions = s.scalars(
            select(DecisionRow).where(DecisionRow.event_id == event_id).order_by(DecisionRow.id)
        )
        actions = s.scalars(
            select(ActionRow).where(ActionRow.event_id == event_id).order_by(ActionRow.id)
        )
        return EventDetail(event, list(decisions), list(actions))


def statuses(journal: Journal, tenant: str) -> list[str]:
    """The event statuses a tenant's journal holds (for the filter's choices)."""
    with journal.session() as s:
        query = select(EventRow.status).where(EventRow.tenant == tenant).distinct()
        return sorted(s.scalars(query))
