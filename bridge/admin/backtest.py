"""The backtest page: start a replay of a pack over the CRM's history, watch it, read it.

The replay runs as an rq job on the workers (:func:`bridge.backtest.job`), which report
their progress in the job's meta; the page refreshes itself while it runs (no script).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, request, url_for
from flask_login import login_required
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bridge import queue
from bridge.admin import bp, charts
from bridge.admin.auth import runtime
from bridge.admin.scope import Scope, current_scope, download, page

RESULT_TTL = 7 * 24 * 3600
JOB_TIMEOUT = 3600


@bp.route("/backtest", methods=["GET", "POST"])
@login_required
def backtest_page() -> Any:
    """The form (a pack of the tenant, the first day); POST starts the replay."""
    scope = current_scope()
    if request.method == "POST":
        pack = request.form.get("pack", "")
        if pack not in {p.pack for p in scope.tenant.packs}:
            abort(400, description="выберите пакет правил этой компании")
        return redirect(url_for("admin.backtest_run", job_id=_start(scope, pack), **scope.args()))
    return page("backtest.html", scope, packs=[p.pack for p in scope.tenant.packs])


def _start(scope: Scope, pack: str) -> str:
    zone = ZoneInfo(scope.tenant.config.timezone)
    since = datetime.combine(scope.since, time(0), zone)
    job_id = f"backtest-{scope.tenant.name}-{uuid.uuid4().hex[:12]}"
    queue.jobs_queue(runtime().redis).enqueue_call(
        "bridge.backtest.job",
        args=(scope.tenant.name, pack, since.isoformat()),
        job_id=job_id,
        description=f"backtest {pack} of {scope.tenant.name}",
        result_ttl=RESULT_TTL,
        timeout=JOB_TIMEOUT,
        meta={"tenant": scope.tenant.name, "done": 0, "total": 0},
    )
    return job_id


def _job(scope: Scope, job_id: str) -> Job:
    try:
        job = Job.fetch(job_id, connection=runtime().redis)
    except NoSuchJobError:
        abort(404)
    if job.meta.get("tenant") != scope.tenant.name:
        abort(404)
    return job


@bp.route("/backtest/<job_id>")
@login_required
def backtest_run(job_id: str) -> Any:
    """A replay's progress bar while it runs, its reports when it is done."""
    scope = current_scope()
    job = _job(scope, job_id)
    status = job.get_status()
    result = job.return_value() if status == "finished" else None
    drawn = {}
    if result:
        tables = result["tables"]
        drawn = {
            name: charts.bars(tables[name])
            for name in ("violations-by-rule", "violations-by-manager", "violations-by-stage")
        }
    error = (
        (job.latest_result().exc_string or "").strip().splitlines()[-1:]
        if status == "failed"
        else []
    )
    return page(
        "backtest_run.html",
        scope,
        job=job,
        status=status,
        result=result,
        drawn=drawn,
        error=error[0] if error else "",
        hide_scope=True,
    )


@bp.route("/backtest/<job_id>/<name>.<fmt>")
@login_required
def backtest_export(job_id: str, name: str, fmt: str) -> Any:
    """One report of a finished replay as CSV or XLSX."""
    scope = current_scope()
    job = _job(scope, job_id)
    result = job.return_value() if job.get_status() == "finished" else None
    if not result or name not in result["tables"]:
        abort(404)
    return download(result["tables"][name], fmt, scope)
