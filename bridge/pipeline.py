"""The pipeline: the rq job that turns one journaled event into actions in the CRM.

fetch (the event carries only an id) -> translate -> diff with the snapshot -> gather facts
(look-ups, e-mails sent, history) -> evaluate -> execute with idempotency keys -> schedule
timers -> store the snapshot -> journal. The snapshot is stored only after the actions, so a
crash in between replays the same diff and the same keys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bridge import actions, email, timers
from bridge.calendar import as_datetime
from bridge.config import Tenant
from bridge.crms.connector import Connector, Outcome
from bridge.errors import PermanentError, TransientError
from bridge.journal import EventRow, Journal, SnapshotRow
from bridge.models import STANDARD_FIELDS, Action, Event, Plan, Record, RecordRef
from bridge.regulations.engine import Context, Facts, evaluate, needed_lookups
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

FINAL = ("processed", "failed")


def run_event(rt: Runtime, event_id: int) -> str:
    """Process one event; returns its final status.

    Raises:
        TransientError: the CRM could not be reached; rq retries the job with backoff.
    """
    row = rt.journal.event(event_id)
    if row is None or row.status in FINAL:
        return row.status if row else "missing"  # a re-run of finished work does nothing
    tenant = rt.tenant(row.tenant)
    if tenant is None:
        rt.journal.finish_event(event_id, "failed", f"tenant {row.tenant!r} is not configured")
        return "failed"
    try:
        reason = _process(rt, tenant, _event(row))
    except TransientError as exc:
        rt.journal.finish_event(event_id, "retrying", str(exc))
        raise
    except PermanentError as exc:
        rt.journal.finish_event(event_id, "failed", str(exc))
        return "failed"
    rt.journal.finish_event(event_id, "processed", reason)
    return "processed"


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


def _process(rt: Runtime, tenant: Tenant, event: Event) -> str:
    conn = rt.connector(tenant)
    ref = conn.subject_owner(event)
    record = conn.fetch(ref)
    snap = rt.journal.snapshot(tenant.name, ref.kind, ref.id)
    previous = Record.from_dict(snap.data) if snap else None
    ctx = context(rt.journal, tenant, conn, event, record, previous, snap)
    plan = evaluate(event, record, previous, tenant.rules, ctx)
    rt.journal.add_decisions(event.id, [(d.rule, d.verdict, d.detail) for d in plan.decisions])
    failed = execute(rt, conn, event, record, plan.actions, ctx.stay)
    timers.schedule(rt.redis, tenant.name, plan.timers)
    _store(rt, tenant, event, record, previous)
    done = len(plan.actions) - len(failed)
    parts = [f"{done} action(s) done"]
    parts += [f"{len(failed)} failed"] if failed else []
    parts += [f"{len(plan.timers)} timer(s) set"] if plan.timers else []
    return ", ".join(parts)


def _store(
    rt: Runtime, tenant: Tenant, event: Event, record: Record, previous: Record | None
) -> None:
    data = record.to_dict()
    if previous is not None:
        rt.journal.record_changes(
            tenant.name, record.kind, record.id, changed_fields(previous, record), event.received_at
        )
    rt.journal.store_snapshot(
        tenant.name, record.kind, record.id, record.stage, data, event.received_at
    )


def changed_fields(previous: Record, record: Record) -> list[str]:
    """Canonical names whose value differs between two states of a record (its history)."""
    names = (STANDARD_FIELDS - {"kind", "id", "crm"}) | set(record.fields) | set(previous.fields)
    return sorted(n for n in names if previous.value(n) != record.value(n))


def context(
    journal: Journal,
    tenant: Tenant,
    conn: Connector,
    event: Event,
    record: Record,
    previous: Record | None,
    snap: SnapshotRow | None,
) -> Context:
    """The engine's context for one event: time, calendar, stay, people and facts."""
    stay = stay_of(snap, record)
    base = tenant_context(tenant, event, stay)
    queries = needed_lookups(event, record, previous, tenant.rules, base)
    facts = Facts(
        stage_since=stage_since(snap, record, event.received_at),
        lookups={
            rule: {n: tuple(conn.find(q)) for n, q in qs.items()} for rule, qs in queries.items()
        },
        emails_sent=journal.emails_sent(tenant.name, record.kind, record.id, stay),
        history=journal.change_counts(tenant.name, record.kind, record.id),
        activity=conn.activity_of(event),
    )
    return replace(base, facts=facts)


def tenant_context(tenant: Tenant, event: Event, stay: str, facts: Facts | None = None) -> Context:
    """A tenant's engine context at the event's time (deadlines count from it)."""
    return Context(
        now=event.received_at,
        calendar=tenant.calendar,
        stay=stay,
        people=tenant.people(),
        schedules=tenant.schedules(),
        facts=facts or Facts(),
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


def stay_of(snap: SnapshotRow | None, record: Record) -> str:
    """The stay token: the snapshot version at which the record entered its current stage."""
    if snap is None:
        return "1"
    if snap.stage == record.stage:
        return str(snap.stay)
    return str(snap.version + 1)  # store_snapshot will open this stay


def stage_since(snap: SnapshotRow | None, record: Record, now: datetime) -> datetime | None:
    """When the record entered its stage: our snapshot, else the CRM's own stamp, else now."""
    if snap is not None and snap.stage == record.stage:
        return snap.stage_since
    if snap is None and record.fields.get("stage_since"):
        return as_datetime(record.fields["stage_since"], "UTC")
    return now


def execute(
    rt: Runtime,
    conn: Connector,
    event: Event,
    record: Record,
    plan_actions: Sequence[Action],
    stay: str = "",
) -> list[str]:
    """Carry out the plan's actions once each; returns the keys of actions that failed.

    Raises:
        TransientError: some actions must wait; done ones stay done, the rest retry.
    """
    todo = [a for a in plan_actions if _still_to_do(rt, conn, event, record, a, stay)]
    crm = [a for a in todo if a.params.by == "crm"]
    outcomes = conn.execute(record, crm) if crm else {}
    outcomes.update({a.key: _send_email(rt, conn, record, a) for a in todo if a.params.by != "crm"})
    failed, waiting = [], []
    for action in todo:
        outcome = outcomes[action.key]
        status = "pending" if outcome.status == "retry" else outcome.status
        rt.journal.settle_action(action.key, status, outcome.result, outcome.error)
        if outcome.status == "retry":
            waiting.append(action.key)
        elif status == "failed":
            failed.append(action.key)
    if waiting:
        raise TransientError(f"{len(waiting)} action(s) must wait: {outcomes[waiting[0]].error}")
    return failed


def _send_email(rt: Runtime, conn: Connector, record: Record, action: Action) -> Outcome:
    assert isinstance(action.params, actions.SendEmail)
    try:
        sent = email.send_action(rt.mailer(conn.tenant), conn, record, action)
    except TransientError as exc:
        return Outcome("retry", error=str(exc))
    except PermanentError as exc:
        return Outcome("failed", error=str(exc))
    result: dict[str, Any] = {"template": action.params.template, "message_id": sent.message_id}
    return Outcome("done", result)


def _still_to_do(
    rt: Runtime, conn: Connector, event: Event, record: Record, a: Action, stay: str
) -> bool:
    row, created = rt.journal.claim_action(
        a.key,
        event_id=event.id,
        tenant=event.tenant,
        rule=a.rule,
        kind=a.kind,
        record_kind=a.ref.kind,
        record_id=a.ref.id,
        summary=a.describe(),
        stay=stay,
    )
    if row.status in ("done", "failed"):
        return False
    if not created:
        # a previous attempt may have acted and died before writing it down: look in the CRM
        trace = conn.find_done(record, a)
        if trace is not None:
            rt.journal.settle_action(a.key, "done", trace)
            log.info("action %s was already done by an earlier attempt", a.key)
            return False
    return True
