"""The queue as a tenant's admin sees it: events waiting, events parked until their retry,
timers scheduled, dead letters.

A dead letter (an event that ran out of retries, or failed for good) can be put back with a
button: what it did is kept, what failed or never ran runs again (``Runtime.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, url_for
from flask_login import login_required

from bridge import timers
from bridge.admin import bp
from bridge.admin.auth import runtime
from bridge.admin.scope import current_scope, page
from bridge.masking import redact

SHOWN = 200


@dataclass(frozen=True)
class JobLine:
    """One waiting event, timer or dead letter as the page lists it."""

    id: str
    what: str
    when: datetime | None
    error: str = ""


def _waiting(tenant: str) -> list[JobLine]:
    out = []
    for entry in runtime().queue.peek(tenant, SHOWN):
        f = entry.fields
        if entry.kind == "timer":
            _, kind, record_id, subject = timers.parse(f["m"])
            what = f"таймер {subject.split('|')[0]}: {kind} {record_id}"
            when = None
        elif entry.kind == "replay":
            what, when = f"повтор события {f.get('event')}", None
        else:
            what = f"{f.get('source')}: {f.get('kind') or '?'} {f.get('record_id') or ''}"
            when = datetime.fromisoformat(f["at"]) if f.get("at") else None
        out.append(JobLine(entry.id, what, when))
    return out


def _parked(tenant: str) -> list[JobLine]:
    parked = runtime().queue.parked(tenant, SHOWN)
    rows = runtime().journal.events_by_id(event_id for event_id, _, _ in parked)
    return [
        JobLine(
            str(event_id),
            record.replace(":", " ", 1),
            datetime.fromtimestamp(due, UTC).replace(tzinfo=None),
            redact(rows[event_id].reason) if event_id in rows else "",
        )
        for event_id, record, due in parked
    ]


def _timers(tenant: str) -> list[JobLine]:
    lines = []
    for member, due in timers.pending(runtime().redis, tenant)[:SHOWN]:
        _, kind, record_id, subject = timers.parse(member)
        rule, step, _stay = subject.split("|")
        lines.append(JobLine(rule, f"таймер {rule}, шаг {step}: {kind} {record_id}", due))
    return lines


def _failed(tenant: str) -> list[JobLine]:
    return [
        JobLine(
            str(row.id),
            f"{row.source}: {row.kind} {row.record_id}",
            row.processed_at,
            redact(row.reason),
        )
        for row in runtime().journal.failed(tenant, SHOWN)
    ]


@bp.route("/queue")
@login_required
def queue_page() -> Any:
    """Events waiting, timers scheduled, events failed (with a replay button each)."""
    scope = current_scope()
    name = scope.tenant.name
    return page(
        "queue.html",
        scope,
        waiting=_waiting(name),
        parked=_parked(name),
        timers=_timers(name),
        failed=_failed(name),
    )


@bp.route("/queue/replay/<job_id>", methods=["POST"])
@login_required
def replay(job_id: str) -> Any:
    """Put one failed event of the tenant back in the queue."""
    scope = current_scope()
    row = runtime().journal.event(int(job_id)) if job_id.isdigit() else None
    if row is None or row.tenant != scope.tenant.name or row.status != "failed":
        abort(404)
    runtime().replay([row.id])
    flash(f"Событие {job_id} снова в очереди.", "info")
    return redirect(url_for("admin.queue_page", **scope.args()))


@bp.route("/queue/replay-all", methods=["POST"])
@login_required
def replay_all() -> Any:
    """Put every event of the tenant that ran out of retries back in the queue."""
    scope = current_scope()
    count = runtime().resume(scope.tenant.name)
    flash(f"Снова в очереди: {count}.", "info")
    return redirect(url_for("admin.queue_page", **scope.args()))
