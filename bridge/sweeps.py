"""Sweeps: rules that run periodically over every open record of a tenant.

"An order may stay in work at most 7 days" cannot wait for a webhook: nothing happens to a
forgotten order. A sweep lists the open records through the connector (paged, batched),
evaluates the rules that ask for ``event: sweep`` on each, and acts on those that match. The
actions carry the same per-stay idempotency keys as any other, so an hourly sweep reminds
once per stay, not once per hour. Time in stage comes from the bridge's snapshots, else from
the CRM's own stamp (Bitrix24's ``MOVED_TIME``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from bridge import clock
from bridge.config import Tenant
from bridge.deadlines import DeadlineKind, Unit, parse_deadline
from bridge.execute import Item, execute
from bridge.journal import SnapshotRow
from bridge.masking import redact
from bridge.models import Event, Record
from bridge.pipeline import plan_for, stage_since, stay_of
from bridge.queue import BATCH
from bridge.regulations.engine import Facts
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


def sweep_rules(tenant: Tenant) -> list:
    """The tenant's rules that run in sweeps."""
    return [rule for rule in tenant.rules if "sweep" in rule.when.event]


def sweep(rt: Runtime, tenant_name: str) -> str:
    """Evaluate the sweep rules over every open record; returns a summary.

    The records' actions are carried out a batch at a time across records (one Bitrix24
    ``batch`` for 50 of them), not one request per record.
    """
    tenant = rt.tenant(tenant_name)
    rules = sweep_rules(tenant) if tenant else []
    if not rules:
        return "no sweep rules"
    now = clock.utcnow()
    event_id, _ = rt.journal.record_event(
        tenant=tenant.name,
        crm=tenant.config.crm,
        source="sweep",
        type="sweep",
        status="processing",
        received_at=now,
    )
    kinds = sorted({k for rule in rules for k in (rule.when.kind or ["deal"])})
    seen = acted = 0
    pending: list[Item] = []
    for kind in kinds:
        snaps = rt.journal.snapshots(tenant.name, kind)
        for record in rt.connector(tenant).list_open(kind):
            seen += 1
            items = _plan(rt, tenant, event_id, record, snaps.get(record.id), now)
            acted += bool(items)
            pending += items
            if len(pending) >= BATCH:
                execute(rt, rt.connector(tenant), pending)
                pending = []
    if pending:
        execute(rt, rt.connector(tenant), pending)
    summary = f"{seen} open record(s) swept, {acted} with actions"
    rt.journal.finish_event(event_id, "processed", summary)
    return summary


def _plan(
    rt: Runtime,
    tenant: Tenant,
    event_id: int,
    record: Record,
    snap: SnapshotRow | None,
    now: datetime,
) -> list[Item]:
    event = Event(tenant.name, tenant.config.crm, "sweep", record.ref, now, "sweep", event_id)
    stay = stay_of(snap, record)
    facts = Facts(stage_since=stage_since(snap, record, now))
    plan = plan_for(tenant, event, record, None, stay, facts)
    if not plan.actions:
        return []
    fired = [d for d in plan.decisions if d.verdict == "fired"]
    rt.journal.add_decisions(
        event_id, [replace(d, detail=f"{record.ref}: {d.detail}") for d in fired], record
    )
    if snap is None or snap.stage != record.stage:
        # a record first met here: remember its stay so that the next sweep keeps its keys
        rt.journal.store_snapshot(
            tenant.name, record.kind, record.id, record.stage, record.to_dict(), now
        )
    return [Item(event_id, tenant.name, record, a, stay) for a in plan.actions]


def check(rt: Runtime, tenant_name: str, method: str) -> str:
    """Ask a tenant's CRM one of its declared checks; journal each problem as an alert."""
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        return f"tenant {tenant_name!r} is not configured"
    problems = getattr(rt.connector(tenant), method)()
    for problem in problems:
        log.error("%s: %s", tenant_name, redact(problem))
        rt.journal.record_event(
            tenant=tenant_name,
            crm=tenant.config.crm,
            source=f"check:{method}",
            type="alert",
            status="alert",
            reason=redact(problem),
            received_at=clock.utcnow(),
        )
    return "; ".join(redact(p) for p in problems) or "no problems"


def interval_seconds(every: str) -> int:
    """A pack's ``sweep_every`` as seconds (a plain duration: minutes, hours or days)."""
    deadline = parse_deadline(every)
    units = {Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400}
    if deadline.kind is not DeadlineKind.CALENDAR or deadline.unit not in units or deadline.then:
        raise ValueError(
            f"sweep_every must be a plain duration such as '60 minutes', not {every!r}"
        )
    return int(timedelta(seconds=deadline.amount * units[deadline.unit]).total_seconds())
