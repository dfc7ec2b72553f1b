"""The rq jobs of the bridge: the functions a worker runs, named by dotted path.

Each one finds this process's runtime and hands the work to the module that does it; nothing
but ids and names travels in a job (never a phone or an e-mail: rq logs job arguments).
"""

from __future__ import annotations

from rq.cron import CronScheduler

from bridge import clock, crms, pipeline, queue, runtime, sweeps
from bridge.runtime import Runtime


def process_event(event_id: int) -> str:
    """Process one journaled event."""
    return pipeline.run_event(runtime.current(), event_id)


def fire_timer(tenant: str, kind: str, record_id: str, subject: str, due: str) -> str:
    """Journal a ``timer.due`` event and process it like any other."""
    rt = runtime.current()
    found = rt.tenant(tenant)
    event_id, _ = rt.journal.record_event(
        tenant=tenant,
        crm=found.config.crm if found else "",
        source="timer",
        type="timer.due",
        kind=kind,
        record_id=record_id,
        subject=subject,
        status="queued",
        # the due time is part of the key: a moved timer fires anew, a retried one does not
        dedup_key=f"timer:{kind}:{record_id}:{subject}:{due}",
        received_at=clock.utcnow(),
    )
    return pipeline.run_event(rt, event_id)


def sweep(tenant: str, rules: list[str] | None = None) -> str:
    """Sweep one tenant's open records (with the sweep rules of ``rules``, else all)."""
    return sweeps.sweep(runtime.current(), tenant, rules)


def scheduled_sweeps(tenant: str) -> str:
    """Sweep what a tenant's schedules make due now (``bridge cron`` runs it every minute)."""
    return sweeps.run_due(runtime.current(), tenant)


def check(tenant: str, method: str) -> str:
    """Ask a tenant's CRM one of its declared checks; problems become journaled alerts."""
    return sweeps.check(runtime.current(), tenant, method)


def cron(rt: Runtime) -> CronScheduler:
    """An rq cron scheduler: a look at each tenant's sweep schedules every minute (their
    times are the tenant's, in its zone and calendar: bridge/schedules.py), and its CRM's
    checks."""
    scheduler = CronScheduler(connection=rt.redis)
    for name, tenant in rt.settings.tenants.items():
        if sweeps.sweep_rules(tenant):
            scheduler.register(scheduled_sweeps, queue.EVENTS, args=(name,), interval=sweeps.TICK)
        for item in crms.get(tenant.config.crm).checks:
            scheduler.register(check, queue.EVENTS, args=(name, item.method), interval=item.every)
    return scheduler
