"""The pipeline: a batch of one tenant's stream entries turned into actions in its CRM.

journal the entries -> read their records in one request (an event carries only an id) ->
for each event in order: diff with the snapshot, gather facts, evaluate -> execute every
planned action of the batch at once, each exactly once -> schedule timers -> store snapshots
and finish the events in one transaction. Snapshots are stored only after the actions, so a
crash in between replays the same diff and the same keys. Events of one record are evaluated in
the order they arrived, each against the state the one before left. A ``batch`` event (a file
a CRM uploaded, 1C's orders) is split by the connector into events of their own, through the
gate.

A transient failure (the CRM is down, rate-limited, or slow) makes the events it touched wait:
each is parked for its next retry interval (:meth:`bridge.queue.EventQueue.park`), and later
events of its record are parked behind it, while the tenant's other records go on. Only when
batch after batch fails whole (:data:`OUTAGE_STREAK`), or the CRM refuses the bridge's
credentials, is the whole tenant held back. After the last interval an event is a dead letter
(``failed``, listed by ``bridge failed``, re-run by ``bridge replay``). A permanent failure
fails its own event only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bridge import clock, metrics, timers
from bridge.calendar import as_datetime
from bridge.config import Tenant
from bridge.crms.connector import Connector
from bridge.errors import NeedsAttention, PermanentError, TransientError
from bridge.execute import Item, execute
from bridge.ingress import Gate, Unavailable
from bridge.journal import GAVE_UP, EventRow, History, Snapshot, client_key
from bridge.masking import redact, unredacted_like
from bridge.models import BATCH, STANDARD_FIELDS, Event, Plan, Record, RecordRef
from bridge.queue import Entry, LeaseLost, Parked, record_key
from bridge.regulations.engine import Context, Facts, evaluate, needed_lookups, needs_planned
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

FINAL = ("processed", "failed")
OUTAGE_STREAK = 3
"""Batches in a row in which every event had to wait, after which the CRM is taken to be down
and the whole tenant is held back (one failing batch may be bad luck: its events are parked)."""
CLIENT = "contact_id"
"""The canonical field naming a record's client: history ``per: client`` is keyed by it."""


@dataclass
class Work:
    """One entry on its way through the pipeline."""

    entry: Entry
    row: EventRow
    event: Event
    replay: bool = False
    ref: RecordRef | None = None
    record: Record | None = None
    previous: Record | None = None
    stay: str = ""
    after: Snapshot | None = None  # the record's snapshot once this event is carried through
    plan: Plan = field(default_factory=Plan)
    failed: str = ""  # why it can never succeed
    waiting: str = ""  # why it must wait for a retry
    wait: float = 0.0  # at least this long (seconds): a write of its may still be landing
    behind: bool = False  # an earlier event of its record is parked: it goes behind, untouched
    acted: int = 0
    failures: int = 0
    summary: str = ""  # what a batch event became, instead of its actions

    @property
    def open(self) -> bool:
        """Still to be carried through (neither failed, waiting nor behind)."""
        return not self.failed and not self.waiting and not self.behind

    @property
    def key(self) -> str:
        """What keeps a record's events in order (a file of records has none: its own)."""
        ref = self.event.ref
        return record_key(ref.kind, ref.id) if ref.id else f"event:{self.row.id}"


@dataclass(frozen=True)
class Result:
    """What became of a batch: the entries to acknowledge, those to park, and a hold of the
    whole tenant when its CRM seems down."""

    done: list[str]
    parked: list[Parked] = field(default_factory=list)
    wait_seconds: float | None = None
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def run_batch(
    rt: Runtime, tenant_name: str, entries: Sequence[Entry], owner: str | None = None
) -> Result:
    """Carry a batch of a tenant's entries through; never raises for a CRM's failure.

    Raises:
        LeaseLost: ``owner`` (the worker's lease) lost the tenant before the batch wrote.
    """
    tenant = rt.tenant(tenant_name)
    works = journal_entries(rt, tenant_name, tenant, entries)
    go_behind(rt, tenant_name, works)
    todo = [w for w in works if (w.row.status not in FINAL or w.replay) and not w.behind]
    attention = carry(rt, tenant, tenant_name, todo, owner)
    result = finish(rt, tenant, tenant_name, works, attention=attention)
    return replace(result, done=result.done + _orphans(tenant_name, entries, works))


def carry(
    rt: Runtime, tenant: Tenant | None, tenant_name: str, todo: list[Work], owner: str | None
) -> bool:
    """Read, decide and act for the batch's events; what fails waits or fails. Returns
    whether the CRM refused the bridge's credentials (a person must act). Before writing, the
    worker's lease is renewed: a worker that lost it writes nothing (LeaseLost)."""
    if tenant is None:
        for work in todo:
            work.failed = f"tenant {tenant_name!r} is not configured"
        return False
    conn = rt.connector(tenant)
    records = [w for w in todo if w.event.type != BATCH]
    try:
        with conn.reading_batch():
            expand(rt, conn, [w for w in todo if w.event.type == BATCH])
            read(conn, records)
            decide(rt, tenant, conn, records)
        if owner is not None and not rt.queue.keep(tenant_name, owner):
            raise LeaseLost(tenant_name)
        act(rt, conn, tenant_name, records)
    except LeaseLost:
        raise
    except TransientError as exc:
        _wait(todo, str(exc))
        if isinstance(exc, NeedsAttention):
            alert(rt, tenant, exc)
            return True
    except Exception as exc:  # a bug must not lose the batch: it waits, then dead-letters
        log.exception("%s: a batch of %d failed", tenant_name, len(todo))
        _wait(todo, f"{type(exc).__name__}: {redact(exc)}")
    return False


def _orphans(tenant_name: str, entries: Sequence[Entry], works: list[Work]) -> list[str]:
    """Entries that name an event the journal no longer has (a replay or retry): there is
    nothing to run, and kept they would come back in every batch."""
    carried = {w.entry.id for w in works}
    orphans = [e.id for e in entries if e.id not in carried]
    if orphans:
        log.error("%s: %d entries name events the journal lacks", tenant_name, len(orphans))
    return orphans


def _wait(works: list[Work], reason: str) -> None:
    for work in works:
        if work.open:
            work.waiting = reason


ALERT_EVERY = 3600
"""Seconds between two alerts of one tenant for the same kind of trouble."""


def alert(rt: Runtime, tenant: Tenant, error: NeedsAttention) -> None:
    """Journal (at most hourly) that a tenant's work waits for a person to act."""
    key = f"bridge:alert:{tenant.name}:{type(error).__name__}"
    if not rt.redis.set(key, 1, nx=True, ex=ALERT_EVERY):
        return
    log.error("%s: %s", tenant.name, redact(error))
    rt.journal.record_event(
        tenant=tenant.name,
        crm=tenant.config.crm,
        source="pipeline",
        type="alert",
        status="alert",
        reason=redact(error),
        received_at=clock.utcnow(),
    )
    metrics.ALERTS.labels(tenant.config.crm, "pipeline").inc()


def journal_entries(
    rt: Runtime, tenant_name: str, tenant: Tenant | None, entries: Sequence[Entry]
) -> list[Work]:
    """Journal each entry once as an event (a re-read entry finds its row)."""
    crm = tenant.config.crm if tenant else ""
    again = {e.id: int(e.fields["event"]) for e in entries if e.kind in ("replay", "retry")}
    rows = rt.journal.journal_entries(
        tenant_name, [_values(e, crm) for e in entries if e.id not in again]
    )
    by_entry = {row.entry: row for row in rows}
    by_entry.update({entry: row for entry, row in _replayed(rt, again).items() if row is not None})
    works = [
        Work(e, by_entry[e.id], _event(by_entry[e.id]), replay=e.kind == "replay")
        for e in entries
        if e.id in by_entry
    ]
    rt.queue.forget_keys(tenant_name, [str(e.fields.get("dedup", "")) for e in entries])
    return works


def go_behind(rt: Runtime, tenant_name: str, works: list[Work]) -> None:
    """Mark the events whose record has a parked event this batch did not take up again:
    they must not overtake it."""
    elsewhere = _parked_outside(rt, tenant_name, works, {w.key for w in works})
    for work in works:
        work.behind = work.key in elsewhere


def _parked_outside(rt: Runtime, tenant_name: str, works: list[Work], keys: set[str]) -> set[str]:
    """The record keys among ``keys`` with a parked event this batch did not take up again."""
    ordered = sorted(keys)
    counts = rt.queue.parked_counts(tenant_name, ordered)
    back = Counter(w.key for w in works if w.entry.kind == "retry")
    return {key for key, n in zip(ordered, counts, strict=True) if n > back[key]}


def _values(entry: Entry, crm: str) -> dict[str, Any]:
    f = entry.fields
    if entry.kind == "timer":
        _, kind, record_id, subject = timers.parse(f["m"])
        metrics.TIMER_LAG.observe(max(0.0, clock.utcnow().timestamp() - float(f["due"])))
        values = {"source": "timer", "type": "timer.due", "kind": kind, "record_id": record_id}
        values.update(subject=subject, payload={"due": f["due"]}, received_at=clock.utcnow())
    else:
        values = {k: f.get(k, "") for k in ("source", "type", "kind", "record_id")}
        values.update(subject=f.get("subject") or None, payload=f.get("payload") or {})
        values["received_at"] = datetime.fromisoformat(f["at"])
        crm = f.get("crm") or crm
    return {**values, "crm": crm, "entry": entry.id, "status": "processing"}


def _replayed(rt: Runtime, replays: dict[str, int]) -> dict[str, EventRow | None]:
    rows = rt.journal.replaying(replays.values())
    return {entry: rows.get(event_id) for entry, event_id in replays.items()}


def _event(row: EventRow) -> Event:
    return Event(
        tenant=row.tenant,
        crm=row.crm,
        type=row.type,
        ref=RecordRef(row.kind, row.record_id),
        received_at=row.received_at,
        source=row.source,
        id=row.id,
        subject=row.subject,
    )


# -- expanding ------------------------------------------------------------------------------


def expand(rt: Runtime, conn: Connector, works: list[Work]) -> None:
    """A file of many records (a ``batch`` event): each record becomes an event of its own,
    through the gate, deduplicated and queued like any other.

    Raises:
        TransientError: the file cannot be read now (the batch waits).
    """
    gate = Gate(rt)
    for work in works:
        try:
            items = conn.expand(work.event)
        except PermanentError as exc:
            work.failed = str(exc)
            continue
        try:
            counts = Counter(gate.accept(item)[1] for item in items)
        except Unavailable as exc:
            raise TransientError(str(exc)) from exc
        work.summary = ", ".join(
            [f"{len(items)} record(s)"] + [f"{n} {s}" for s, n in counts.items()]
        )


# -- reading --------------------------------------------------------------------------------


def read(conn: Connector, works: list[Work]) -> None:
    """The record each event is about, all read at once.

    Raises:
        TransientError: the CRM could not be read now (the whole batch waits).
    """
    owners = conn.subject_owners([w.event for w in works]) if works else []
    for work, owner in zip(works, owners, strict=True):
        if isinstance(owner, PermanentError):
            work.failed = str(owner)
        else:
            work.ref = owner
    refs = [w.ref for w in works if w.open and w.ref is not None]
    try:
        records = conn.fetch_many(refs) if refs else {}
    except PermanentError as exc:  # the whole read refused: every event of it fails
        records = dict.fromkeys(refs, exc)
    for work in works:
        if work.open and work.ref is not None:
            found = records[work.ref]
            if isinstance(found, Exception):
                work.failed = str(found)
            else:
                work.record = found


# -- deciding -------------------------------------------------------------------------------


def decide(rt: Runtime, tenant: Tenant, conn: Connector, works: list[Work]) -> None:
    """Evaluate each event against the snapshot the one before it left (its verdicts are
    journaled when it is done: :func:`finish`)."""
    refs = [(w.record.kind, w.record.id) for w in works if w.open and w.record]
    snaps: dict[tuple[str, str], Snapshot] = rt.journal.snapshots_of(tenant.name, refs)
    clients = {w.record.value(CLIENT) for w in works if w.open and w.record} - {None, ""}
    history = rt.journal.history(tenant.name, refs, clients)
    for work in works:
        if not (work.open and work.record):
            continue
        record, ref = work.record, (work.record.kind, work.record.id)
        snap = snaps.get(ref)
        work.previous = previous_of(snap, record)
        work.stay = stay_of(snap, record)
        ctx = context(history, tenant, conn, work.event, record, work.previous, snap, work.stay)
        work.plan = evaluate(work.event, record, work.previous, tenant.rules, ctx)
        work.after = snaps[ref] = next_snapshot(snap, record, work.event.received_at)


def context(
    history: History,
    tenant: Tenant,
    conn: Connector,
    event: Event,
    record: Record,
    previous: Record | None,
    snap: Snapshot | None,
    stay: str,
) -> Context:
    """The engine's context for one event: time, calendar, stay, people and facts."""
    client = record.value(CLIENT)
    facts = Facts(
        stage_since=stage_since(snap, record, event.received_at),
        emails_sent=history.emails_sent(record.kind, record.id, stay),
        history=history.change_counts(record.kind, record.id),
        client_history=history.client_change_counts(client) if client else {},
        activity=conn.activity_of(event),
    )
    if needs_planned(event, record, previous, tenant.rules, facts):
        facts = replace(facts, planned_at=conn.planned_activity(record))
    base = tenant_context(tenant, event, stay, facts)
    # look-ups last: they run only for rules that the other facts leave able to fire
    queries = needed_lookups(event, record, previous, tenant.rules, base)
    lookups = {
        rule: {n: tuple(conn.find(q)) for n, q in qs.items()} for rule, qs in queries.items()
    }
    return replace(base, facts=replace(facts, lookups=lookups))


def tenant_context(tenant: Tenant, event: Event, stay: str, facts: Facts | None = None) -> Context:
    """A tenant's engine context at the event's time (deadlines count from it)."""
    return Context(
        now=event.received_at,
        calendar=tenant.calendar,
        stay=stay,
        people=tenant.people(),
        schedules=tenant.schedules(),
        facts=facts or Facts(),
        constants=tenant.constants(),
        surnames=tenant.surnames(),
        labels=tenant.mapping.labels(),
        types=tenant.mapping.types(),
    )


def plan_for(
    tenant: Tenant,
    event: Event,
    record: Record,
    previous: Record | None,
    stay: str,
    facts: Facts | None = None,
) -> Plan:
    """The tenant's regulations applied to one event, without I/O (dry runs, sweeps)."""
    return evaluate(
        event, record, previous, tenant.rules, tenant_context(tenant, event, stay, facts)
    )


def previous_of(snap: Any, record: Record) -> Record | None:
    """The record as its snapshot keeps it, or None. The journal keeps snapshots with phones
    and e-mails masked: a value the record still holds is put back unmasked, so that only
    what changed compares unequal."""
    if snap is None:
        return None
    return Record.from_dict(unredacted_like(snap.data, record.to_dict()))


def stay_of(snap: Any, record: Record) -> str:
    """The stay token: the snapshot version at which the record entered its current stage."""
    if snap is None:
        return "1"
    if snap.stage == record.stage:
        return str(snap.stay)
    return str(snap.version + 1)  # the next snapshot opens this stay


def stage_since(snap: Any, record: Record, now: datetime) -> datetime | None:
    """When the record entered its stage: our snapshot, else the CRM's own stamp, else now."""
    if snap is not None and snap.stage == record.stage:
        return snap.stage_since
    if snap is None and record.fields.get("stage_since"):
        return as_datetime(record.fields["stage_since"], "UTC")
    return now


def next_snapshot(snap: Snapshot | None, record: Record, at: datetime) -> Snapshot:
    """The snapshot after ``record`` was seen at ``at``: a new stage opens a new stay."""
    version = (snap.version if snap else 0) + 1
    if snap is None or snap.stage != record.stage:
        return Snapshot(version, version, record.stage, at, record.to_dict())
    return Snapshot(version, snap.stay, record.stage, snap.stage_since, record.to_dict())


def changed_fields(previous: Record, record: Record) -> list[str]:
    """Canonical names whose value differs between two states of a record (its history)."""
    names = (STANDARD_FIELDS - {"kind", "id", "crm"}) | set(record.fields) | set(previous.fields)
    return sorted(n for n in names if previous.value(n) != record.value(n))


# -- acting ---------------------------------------------------------------------------------


def act(rt: Runtime, conn: Connector, tenant: str, works: list[Work]) -> None:
    """Execute every planned action of the batch at once; an action that must wait makes its
    event wait."""
    items = [
        Item(w.row.id, tenant, w.record, a, w.stay, w.replay)
        for w in works
        if w.open and w.record
        for a in w.plan.actions
    ]
    outcomes = execute(rt, conn, items) if items else {}
    for work in works:
        for action in work.plan.actions if work.open else ():
            outcome = outcomes.get(action.key)
            if outcome is None or outcome.status == "done":
                work.acted += outcome is not None
            elif outcome.status == "retry":
                work.waiting = work.waiting or outcome.error
                work.wait = max(work.wait, outcome.wait)
            else:
                work.failures += 1


# -- finishing ------------------------------------------------------------------------------


def finish(
    rt: Runtime,
    tenant: Tenant | None,
    tenant_name: str,
    works: list[Work],
    *,
    attention: bool = False,
) -> Result:
    """Timers, snapshots, changes and final statuses in one go; the waiting ones counted and
    parked, and the tenant held back when its CRM seems down (or refuses us: ``attention``)."""
    waiting = [w for w in works if w.waiting]
    held = {(w.record.kind, w.record.id) for w in waiting if w.record}
    snapshots, changes = _snapshots(works, held | _parked_elsewhere(rt, tenant_name, works))
    timers.schedule(rt.redis, tenant_name, [t for w in works if w.open for t in w.plan.timers])
    finished = [(w.row.id, *_verdict(w)) for w in works if not w.waiting and not w.behind]
    gave_up, delays = _give_up(rt, tenant, waiting)
    finished += [(w.row.id, "failed", w.waiting) for w in gave_up]
    dead = {w.row.id for w in gave_up}
    ends = {event_id for event_id, _, _ in finished}
    verdicts = [
        (w.row.id, d, w.record) for w in works if w.row.id in ends for d in w.plan.decisions
    ]
    rt.journal.complete(tenant_name, snapshots, changes, finished, verdicts)
    parked = [Parked(w.entry.id, w.row.id, w.key, max(delays[w.row.id], w.wait)) for w in waiting]
    parked = [p for p in parked if p.event_id not in dead]
    parked += [Parked(w.entry.id, w.row.id, w.key, None) for w in works if w.behind]
    done = [w.entry.id for w in works if not (w.waiting or w.behind) or w.row.id in dead]
    counts = {"processed": sum(not (w.waiting or w.failed or w.behind) for w in works)}
    counts.update(failed=sum(bool(w.failed) for w in works) + len(gave_up))
    counts.update(waiting=len(waiting) - len(gave_up), behind=sum(w.behind for w in works))
    reason = waiting[0].waiting if waiting else ""
    hold = _hold(rt, tenant, tenant_name, works, attention)
    return Result(done, parked, hold, reason, counts)


def _parked_elsewhere(rt: Runtime, tenant_name: str, works: list[Work]) -> set[tuple[str, str]]:
    """The records of the batch with an event parked outside it (an activity event is keyed by
    its activity, not its deal, so it is not parked behind the deal's own): their snapshot
    stays as it is, so that the parked event's retry still sees the change it was about."""
    refs = {record_key(w.record.kind, w.record.id): w.record for w in works if w.open and w.record}
    elsewhere = _parked_outside(rt, tenant_name, works, set(refs))
    return {(refs[key].kind, refs[key].id) for key in elsewhere}


def _hold(
    rt: Runtime, tenant: Tenant | None, tenant_name: str, works: list[Work], attention: bool
) -> float | None:
    """Seconds to hold the whole tenant back: when every event it tried had to wait, batch
    after batch (the CRM is down: asking it again per record helps nobody), or at once when
    the CRM refuses the bridge's credentials. None: the tenant goes on."""
    tried = [w for w in works if not w.behind and not w.failed]
    streak = rt.queue.streak(tenant_name, all(w.waiting for w in tried) if tried else None)
    intervals = tenant.config.retry_intervals if tenant else []
    if not intervals or (streak < OUTAGE_STREAK and not (attention and streak)):
        return None
    step = streak - 1 if attention else streak - OUTAGE_STREAK
    return float(intervals[min(step, len(intervals) - 1)])


def _snapshots(
    works: list[Work], held: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], Snapshot], list[tuple[str, str, str, datetime, str | None]]]:
    """The last snapshot of each record the batch carried through, and the fields each event
    changed. A record with an event that must wait keeps its old snapshot: the retry replays
    the same diff and the same keys."""
    snaps: dict[tuple[str, str], Snapshot] = {}
    changes = []
    for work in works:
        record = work.record
        if not (work.open and record and work.after) or (record.kind, record.id) in held:
            continue
        snaps[(record.kind, record.id)] = work.after
        if work.previous is not None:
            at, fields = work.event.received_at, changed_fields(work.previous, record)
            client = client_key(record.value(CLIENT))
            changes += [(record.kind, record.id, f, at, client) for f in fields]
    return snaps, changes


def _verdict(work: Work) -> tuple[str, str]:
    if work.failed:
        return "failed", work.failed
    if work.summary:
        return "processed", work.summary
    parts = [f"{work.acted} action(s) done"]
    parts += [f"{work.failures} failed"] if work.failures else []
    parts += [f"{len(work.plan.timers)} timer(s) set"] if work.plan.timers else []
    return "processed", ", ".join(parts)


def _give_up(
    rt: Runtime, tenant: Tenant | None, waiting: list[Work]
) -> tuple[list[Work], dict[int, float]]:
    """Count an attempt for each waiting event; those past the last retry interval become dead
    letters. Returns them, and the seconds each of the others waits."""
    if not waiting:
        return [], {}
    intervals = tenant.config.retry_intervals if tenant else [0]
    counts = rt.journal.count_attempt([w.row.id for w in waiting], waiting[0].waiting)
    gave_up = [w for w in waiting if counts[w.row.id] > len(intervals)]
    for work in gave_up:
        work.waiting = f"{GAVE_UP} {counts[work.row.id]} attempts: {work.waiting}"
    delays = {
        event_id: float(intervals[min(n, len(intervals)) - 1]) if intervals else 0.0
        for event_id, n in counts.items()
    }
    return gave_up, delays
