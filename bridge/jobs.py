"""The rq jobs of the bridge (sweeps, the CRMs' checks) and the schedule that runs them.

Events and timers do not go through rq: they are the tenants' streams (:mod:`bridge.queue`).
Each job finds this process's runtime and hands the work to the module that does it; nothing
but ids and names travels in a job (never a phone or an e-mail: rq logs job arguments).
"""

from __future__ import annotations

import logging
import time

import redis
from rq.cron import CronScheduler

from bridge import crms, queue, reconcile, runtime, sweeps
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
"""Seconds ``bridge cron`` waits at most between two tries to reach Redis again."""


def sweep(tenant: str, rules: list[str] | None = None) -> str:
    """Sweep one tenant's open records (with the sweep rules of ``rules``, else all)."""
    return sweeps.sweep(runtime.current(), tenant, rules)


def scheduled_sweeps(tenant: str) -> str:
    """Sweep what a tenant's schedules make due now (``bridge cron`` runs it every minute)."""
    return sweeps.run_due(runtime.current(), tenant)


def reconcile_tenant(tenant: str) -> str:
    """Feed the changes of a tenant's CRM whose webhooks never came."""
    return reconcile.reconcile(runtime.current(), tenant)


def check(tenant: str, method: str) -> str:
    """Ask a tenant's CRM one of its declared checks; problems become journaled alerts."""
    return sweeps.check(runtime.current(), tenant, method)


def chore(tenant: str, method: str) -> str:
    """Run one of a tenant's CRM's declared chores (housekeeping); returns its summary."""
    return sweeps.chore(runtime.current(), tenant, method)


def cron(rt: Runtime) -> CronScheduler:
    """An rq cron scheduler: a look at each tenant's sweep schedules every minute (their
    times are the tenant's, in its zone and calendar: bridge/schedules.py), and its CRM's
    checks and chores."""
    scheduler = CronScheduler(connection=rt.redis)
    for name, tenant in rt.settings.tenants.items():
        if sweeps.sweep_rules(tenant):
            scheduler.register(scheduled_sweeps, queue.JOBS, args=(name,), interval=sweeps.TICK)
        if tenant.config.reconcile_every:
            seconds = sweeps.interval_seconds(tenant.config.reconcile_every)
            scheduler.register(reconcile_tenant, queue.JOBS, args=(name,), interval=seconds)
        declared = crms.get(tenant.config.crm)
        for item in declared.checks:
            scheduler.register(check, queue.JOBS, args=(name, item.method), interval=item.every)
        for job in declared.chores:
            scheduler.register(chore, queue.JOBS, args=(name, job.method), interval=job.every)
    return scheduler


def run_cron(rt: Runtime) -> None:
    """Run the schedule until stopped; a lost Redis is waited out with backoff and the
    schedule started again (rq's scheduler leaves on the first ``ConnectionError``, and a
    cron that stays down stops reconciliation, so the webhooks lost meanwhile are never
    found)."""
    backoff = 0.5
    while True:
        started = time.monotonic()
        try:
            cron(rt).start()
            return  # stopped by a signal
        except redis.RedisError as exc:
            if time.monotonic() - started > MAX_BACKOFF:
                backoff = 0.5  # it ran a while: this is a new outage
            log.error("Redis unreachable (%s); the schedule starts again in %.1fs", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
