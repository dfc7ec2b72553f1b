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
from bridge.calendar import DeadlineKind, Unit, parse_deadline
from bridge.config import Tenant
from bridge.journal import SnapshotRow
from bridge.masking import redact
from bridge.models import Event, Record
from bridge.pipeline import execute, plan_for, stage_since, stay_of
from bridge.regulations.engine import Facts
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


def sweep_rules(tenant: Tenant) -> list:
    """The tenant's rules that run in sweeps."""
    return [rule for rule in tenant.rules if "sweep" in rule.when.event]


def sweep(rt: Runtime, tenant_name: str) -> str:
    """Evaluate the sweep rules over every open record; returns a summary."""
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
        status="queued",
        received_at=now,
    )
    kinds = sorted({k for rule in rules for k in (rule.when.kind or ["deal"])})
    seen = acted = 0
    for kind in kinds:
        snaps = rt.journal.snapshots(tenant.name, kind)
        for record in rt.connector(tenant).list_open(kind):
            seen += 1
            acted += _one(rt, tenant, event_id, record, snaps.get(record.id), now)
    summary = f"{seen} open record(s) swept, {acted} with actions"
    rt.journal.finish_event(event_id, "processed", summary)
    return summary


def _one(
    rt: Runtime,
    tenant: Tenant,
    event_id: int,
    record: Record,
    snap: SnapshotRow | None,
    now: datetime,
) -> int:
    event = Event(tenant.name, tenant.config.crm, "sweep", record.ref, now, "sweep", event_id)
    stay = stay_of(snap, record)
    facts = Facts(stage_since=stage_since(snap, record, now))
    plan = plan_for(tenant, event, record, None, stay, facts)
    if not plan.actions:
        return 0
    fired = [d for d in plan.decisions if d.verdict == "fired"]
    rt.journal.add_decisions(
        event_id, [replace(d, detail=f"{record.ref}: {d.detail}") for d in fired], record
    )
    execute(rt, rt.connector(tenant), event, record, plan.actions, stay)
    if snap is None or snap.stage != record.stage:
        # a record first met here: remember its stay so that the next sweep keeps its keys
        rt.journal.store_snapshot(
            tenant.name, record.kind, record.id, record.stage, record.to_dict(), now
        )
    return 1


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
    if deadline.kind is not DeadlineKind.CALENDAR:
        raise ValueError(
            f"sweep_every must be a plain duration such as '60 minutes', not {every!r}"
        )
    unit = {Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400}[deadline.unit]
    return int(timedelta(seconds=deadline.amount * unit).total_seconds())
