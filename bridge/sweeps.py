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
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime

from bridge import clock, metrics
from bridge.config import Tenant
from bridge.execute import Item, execute
from bridge.journal import SnapshotRow
from bridge.masking import redact
from bridge.models import Event, Record
from bridge.pipeline import stage_since, stay_of, tenant_context
from bridge.queue import BATCH
from bridge.regulations.engine import Facts, evaluate
from bridge.runtime import Runtime
from bridge.schedules import parse_schedule

log = logging.getLogger(__name__)


DEFAULT_SCHEDULE = "60 minutes"
TICK = 60
"""Seconds between two looks of ``bridge cron`` at the schedules: a run is due within it."""


def sweep_rules(tenant: Tenant) -> list:
    """The tenant's rules that run in sweeps."""
    return [rule for rule in tenant.rules if "sweep" in rule.when.event]


def schedules(tenant: Tenant) -> dict[str, list[str]]:
    """Each schedule of the tenant's sweeps -> the ids of the rules it runs.

    A rule's own ``every``, else its pack's ``sweep_every``, else hourly.
    """
    out: dict[str, list[str]] = {}
    for pack in tenant.packs:
        for rule in pack.rules:
            if "sweep" in rule.when.event:
                text = rule.every or pack.sweep_every or DEFAULT_SCHEDULE
                out.setdefault(str(parse_schedule(text)), []).append(rule.id)
    return out


def run_due(rt: Runtime, tenant_name: str) -> str:
    """Sweep the rules whose schedule is due (``bridge cron`` asks every :data:`TICK` s).

    Each schedule remembers its last run in Redis. A schedule first seen starts counting
    now; a run missed while nothing looked (cron stopped) is made once, at the next look.
    Two looks at once sweep once: the run is claimed by its due time.
    """
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        return f"tenant {tenant_name!r} is not configured"
    done = []
    for text, rule_ids in schedules(tenant).items():
        key = f"bridge:schedule:{tenant_name}:{text}"
        now, last = clock.utcnow(), rt.redis.get(key)
        if last is None:
            rt.redis.set(key, now.isoformat())
            continue
        schedule = parse_schedule(text)
        due = schedule.next_after(datetime.fromisoformat(last.decode()), tenant.calendar)
        if due > now or not rt.redis.set(f"{key}:{due.isoformat()}", 1, nx=True, ex=86400):
            continue
        caught_up = schedule.next_after(due, tenant.calendar) > now
        rt.redis.set(key, (due if caught_up else now).isoformat())
        done.append(f"{text}: {sweep(rt, tenant_name, rule_ids)}")
    return "; ".join(done) or "nothing due"


def sweep(rt: Runtime, tenant_name: str, rule_ids: list[str] | None = None) -> str:
    """Evaluate the sweep rules (or those of ``rule_ids``) over every open record; returns a
    summary.

    The records' actions are carried out a batch at a time across records (one Bitrix24
    ``batch`` for 50 of them), not one request per record.
    """
    tenant = rt.tenant(tenant_name)
    rules = sweep_rules(tenant) if tenant else []
    if rule_ids is not None:
        rules = [rule for rule in rules if rule.id in rule_ids]
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

    def planned() -> Iterator[list[Item]]:
        nonlocal seen, acted
        for kind in kinds:
            snaps = rt.journal.snapshots(tenant.name, kind)
            for record in rt.connector(tenant).list_open(kind):
                seen += 1
                items = plan_record(rt, tenant, rules, event_id, record, snaps.get(record.id), now)
                acted += bool(items)
                yield items

    execute_batched(rt, tenant, planned())
    summary = f"{seen} open record(s) swept, {acted} with actions"
    rt.journal.finish_event(event_id, "processed", summary)
    return summary


def execute_batched(rt: Runtime, tenant: Tenant, planned: Iterable[list[Item]]) -> None:
    """Carry out records' planned actions a batch at a time across records, as they are
    planned (one Bitrix24 ``batch`` for 50 of them; a sweep over 100,000 records holds at most
    a batch of actions)."""
    pending: list[Item] = []
    for items in planned:
        pending += items
        if len(pending) >= BATCH:
            execute(rt, rt.connector(tenant), pending)
            pending = []
    if pending:
        execute(rt, rt.connector(tenant), pending)


def plan_record(
    rt: Runtime,
    tenant: Tenant,
    rules: list,
    event_id: int,
    record: Record,
    snap: SnapshotRow | None,
    now: datetime,
    source: str = "sweep",
) -> list[Item]:
    """One record's actions for a run over many (a sweep, a broadcast): its fired decisions
    journaled under the run's event, its stay remembered; nothing is executed here."""
    event = Event(tenant.name, tenant.config.crm, source, record.ref, now, source, event_id)
    stay = stay_of(snap, record)
    facts = Facts(stage_since=stage_since(snap, record, now))
    plan = evaluate(event, record, None, rules, tenant_context(tenant, event, stay, facts))
    if not plan.actions:
        return []
    fired = [d for d in plan.decisions if d.verdict == "fired"]
    rt.journal.add_decisions(
        event_id, [replace(d, detail=f"{record.ref}: {d.detail}") for d in fired], record
    )
    if snap is None or snap.stage != record.stage:
        # a record first met here: remember its stay so that the next sweep keeps its keys,
        # and since when it stands in its stage (the CRM's stamp), so that other sweep rules
        # still see its true age
        since = facts.stage_since or now
        rt.journal.store_snapshot(
            tenant.name, record.kind, record.id, record.stage, record.to_dict(), since
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
        metrics.ALERTS.labels(tenant.config.crm, f"check:{method}").inc()
    return "; ".join(redact(p) for p in problems) or "no problems"


def chore(rt: Runtime, tenant_name: str, method: str) -> str:
    """Run one of a tenant's CRM's declared chores; its summary is logged and returned."""
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        return f"tenant {tenant_name!r} is not configured"
    summary = str(getattr(rt.connector(tenant), method)())
    log.info("%s: %s: %s", tenant_name, method, redact(summary))
    return summary


def interval_seconds(every: str) -> int:
    """A plain duration (``15 minutes``, ``1 hour``) as seconds: how often reconciliation runs.

    Raises:
        ValueError: not an interval (a sweep's days-and-time schedule is not one).
    """
    schedule = parse_schedule(every)
    if schedule.every is None:
        raise ValueError(f"expected a plain duration such as '15 minutes', not {every!r}")
    return int(schedule.every.total_seconds())
