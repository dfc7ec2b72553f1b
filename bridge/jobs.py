"""The rq jobs of the bridge (sweeps, the CRMs' checks) and the schedule that runs them.

Events and timers do not go through rq: they are the tenants' streams (:mod:`bridge.queue`).
Each job finds this process's runtime and hands the work to the module that does it; nothing
but ids and names travels in a job (never a phone or an e-mail: rq logs job arguments).
"""

from __future__ import annotations

from rq.cron import CronScheduler

from bridge import crms, queue, reconcile, runtime, sweeps
from bridge.runtime import Runtime


def sweep(tenant: str) -> str:
    """Sweep one tenant's open records."""
    return sweeps.sweep(runtime.current(), tenant)


def reconcile_tenant(tenant: str) -> str:
    """Feed the changes of a tenant's CRM whose webhooks never came."""
    return reconcile.reconcile(runtime.current(), tenant)


def check(tenant: str, method: str) -> str:
    """Ask a tenant's CRM one of its declared checks; problems become journaled alerts."""
    return sweeps.check(runtime.current(), tenant, method)


def cron(rt: Runtime) -> CronScheduler:
    """An rq cron scheduler: per tenant a sweep (if it has sweep rules), reconciliation with
    its CRM, and its CRM's checks."""
    scheduler = CronScheduler(connection=rt.redis)
    for name, tenant in rt.settings.tenants.items():
        every = [p.sweep_every for p in tenant.packs if p.sweep_every]
        if sweeps.sweep_rules(tenant):
            seconds = min((sweeps.interval_seconds(e) for e in every), default=3600)
            scheduler.register(sweep, queue.JOBS, args=(name,), interval=seconds)
        if tenant.config.reconcile_every:
            seconds = sweeps.interval_seconds(tenant.config.reconcile_every)
            scheduler.register(reconcile_tenant, queue.JOBS, args=(name,), interval=seconds)
        for item in crms.get(tenant.config.crm).checks:
            scheduler.register(check, queue.JOBS, args=(name, item.method), interval=item.every)
    return scheduler
