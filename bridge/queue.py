"""The queue: rq on Redis. Events go in as ids only, never personal data."""

from __future__ import annotations

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

EVENTS = "bridge-events"
"""The queue of received events."""

DEDUP_TTL = 7 * 24 * 3600
"""How long a delivered event's key blocks a duplicate (Bitrix24 never resends later)."""


def events_queue(connection: redis.Redis) -> Queue:
    """The events queue on a connection."""
    return Queue(EVENTS, connection=connection)


def first_delivery(connection: redis.Redis, tenant: str, key: str) -> bool:
    """True the first time an event key is seen (SET NX with a TTL); False for a duplicate."""
    return bool(connection.set(f"bridge:dedup:{tenant}:{key}", 1, nx=True, ex=DEDUP_TTL))


def forget_delivery(connection: redis.Redis, tenant: str, key: str) -> None:
    """Undo :func:`first_delivery` when the event could not be kept (so a resend gets in)."""
    connection.delete(f"bridge:dedup:{tenant}:{key}")


def enqueue_event(connection: redis.Redis, tenant: str, event_id: int, intervals: list[int]) -> str:
    """Enqueue the processing of a journaled event; returns the job id.

    The job id is derived from the event id, so enqueueing the same event twice is refused.
    """
    job_id = f"event-{tenant}-{event_id}"
    events_queue(connection).enqueue_call(
        "bridge.jobs.process_event",
        args=(event_id,),
        job_id=job_id,
        description=f"event {event_id} of {tenant}",
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        failure_ttl=365 * 24 * 3600,
    )
    return job_id


def requeue_failed(connection: redis.Redis, tenant: str) -> int:
    """Requeue a tenant's event and timer jobs from rq's failed registry; returns how many."""
    registry = FailedJobRegistry(queue=events_queue(connection))
    count = 0
    for job_id in registry.get_job_ids():
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        timer = job.func_name == "bridge.jobs.fire_timer" and tuple(job.args[:1]) == (tenant,)
        if job_id.startswith(f"event-{tenant}-") or timer:
            registry.requeue(job_id)
            count += 1
    return count
