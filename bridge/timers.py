"""SLA timers: rq scheduled jobs with deterministic ids.

A timer is only a reminder to look again: when it fires, the pipeline re-reads the record
and re-evaluates the rule's ``unless`` on fresh data (a timer never acts on stale data).
Scheduling the same timer again is a no-op; scheduling it with another due time moves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bridge import clock, queue
from bridge.models import Timer

FIRE = "bridge.jobs.fire_timer"
"""The rq job a timer runs (by name: the timers module never imports the pipeline)."""


def schedule(connection: redis.Redis, tenant: str, timers: Iterable[Timer]) -> list[str]:
    """Schedule (or move) timers; returns the ids that were created or moved."""
    changed = []
    for timer in timers:
        existing = _fetch(connection, timer.id)
        if existing is not None and existing.meta.get("due") == timer.due.isoformat():
            continue  # the same timer again: a repeated event adds nothing
        if existing is not None:
            existing.cancel()
            existing.delete()
        _enqueue(connection, tenant, timer)
        changed.append(timer.id)
    return changed


def scheduled_due(connection: redis.Redis, timer_id: str) -> datetime | None:
    """When a timer is due, or None when it is not scheduled."""
    job = _fetch(connection, timer_id)
    return datetime.fromisoformat(job.meta["due"]) if job and "due" in job.meta else None


def _enqueue(connection: redis.Redis, tenant: str, timer: Timer) -> None:
    q = queue.events_queue(connection)
    args = (tenant, timer.ref.kind, timer.ref.id, timer.subject, timer.due.isoformat())
    options = {
        "job_id": timer.id,
        "meta": {"due": timer.due.isoformat()},
        "description": f"timer {timer.rule} step {timer.step} of {tenant}",
        "failure_ttl": 365 * 24 * 3600,
    }
    if timer.due <= clock.utcnow():
        q.enqueue_call(FIRE, args=args, **options)
    else:
        q.enqueue_at(timer.due.astimezone(UTC), FIRE, *args, **options)


def _fetch(connection: redis.Redis, job_id: str) -> Job | None:
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    return job if job.get_status() in ("scheduled", "queued", "deferred") else None
