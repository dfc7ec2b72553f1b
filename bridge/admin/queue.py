"""The queue as a tenant's admin sees it: waiting jobs, scheduled timers, failed jobs.

A failed job (one that ran out of retries) can be put back with a button; rq keeps failed
jobs for a year (``failure_ttl`` in :mod:`bridge.queue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, url_for
from flask_login import login_required
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bridge import queue
from bridge.admin import bp
from bridge.admin.auth import runtime
from bridge.admin.scope import current_scope, page
from bridge.masking import redact
from bridge.timers import FIRE

SHOWN = 200


@dataclass(frozen=True)
class JobLine:
    """One job as the page lists it."""

    id: str
    what: str
    when: datetime | None
    error: str = ""


def owned_by(job: Job, tenant: str) -> bool:
    """Whether a job is the tenant's: its event jobs by id, its timers by their argument."""
    if job.id.startswith(f"event-{tenant}-"):
        return True
    return job.func_name == FIRE and tuple(job.args[:1]) == (tenant,)


def _jobs(ids: list[str], tenant: str) -> list[Job]:
    jobs = Job.fetch_many(ids[: SHOWN * 4], connection=runtime().redis)
    return [j for j in jobs if j is not None and owned_by(j, tenant)][:SHOWN]


def _what(job: Job) -> str:
    if job.func_name == FIRE:
        _tenant, kind, record_id, subject, _due = job.args
        rule, step, _stay = subject.split("|")
        return f"таймер {rule}, шаг {step}: {kind} {record_id}"
    return f"событие {job.args[0] if job.args else '?'}"


def _error(job: Job) -> str:
    text = (job.latest_result().exc_string if job.latest_result() else "") or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return redact(lines[-1]) if lines else ""


@bp.route("/queue")
@login_required
def queue_page() -> Any:
    """Jobs waiting, timers scheduled, jobs failed (with a replay button each)."""
    scope = current_scope()
    name = scope.tenant.name
    q = queue.events_queue(runtime().redis)
    waiting = [JobLine(j.id, _what(j), j.enqueued_at) for j in _jobs(q.job_ids, name)]
    scheduled_registry = ScheduledJobRegistry(queue=q)
    timers = [
        JobLine(j.id, _what(j), _due(j, scheduled_registry))
        for j in _jobs(scheduled_registry.get_job_ids(), name)
    ]
    failed = [
        JobLine(j.id, _what(j), j.ended_at, _error(j))
        for j in _jobs(FailedJobRegistry(queue=q).get_job_ids(), name)
    ]
    return page("queue.html", scope, waiting=waiting, timers=timers, failed=failed)


def _due(job: Job, registry: ScheduledJobRegistry) -> datetime | None:
    moment = registry.get_scheduled_time(job)
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


@bp.route("/queue/replay/<job_id>", methods=["POST"])
@login_required
def replay(job_id: str) -> Any:
    """Put one failed job of the tenant back in the queue."""
    scope = current_scope()
    registry = FailedJobRegistry(queue=queue.events_queue(runtime().redis))
    job = Job.fetch_many([job_id], connection=runtime().redis)[0]
    if job is None or job_id not in registry or not owned_by(job, scope.tenant.name):
        abort(404)
    registry.requeue(job_id)
    flash(f"Задание {job_id} снова в очереди.", "info")
    return redirect(url_for("admin.queue_page", **scope.args()))


@bp.route("/queue/replay-all", methods=["POST"])
@login_required
def replay_all() -> Any:
    """Put every failed job of the tenant back in the queue."""
    scope = current_scope()
    count = runtime().requeue_failed(scope.tenant.name)
    flash(f"Снова в очереди: {count}.", "info")
    return redirect(url_for("admin.queue_page", **scope.args()))
