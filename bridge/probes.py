"""What the operator's tools ask: ``/health`` (alive), ``/ready`` (can work), ``/metrics``.

None of them needs a login and none names a tenant: they are for load balancers, orchestrators
and Prometheus, which may sit on a network the tenants' data must not reach.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from bridge import metrics
from bridge.runtime import Runtime

bp = Blueprint("probes", __name__)


def _runtime() -> Runtime:
    return current_app.extensions["bridge"]


@bp.route("/health")
def health() -> Any:
    """Liveness: the process answers (it touches nothing else, so a slow Redis never kills it)."""
    return jsonify(status="ok")


@bp.route("/ready")
def ready() -> Any:
    """Readiness: Redis answers and the journal takes a query; 503 naming what does not."""
    rt = _runtime()
    checks = {"redis": _try(lambda: bool(rt.redis.ping()))}
    checks["journal"] = _try(lambda: _journal_answers(rt))
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


def _journal_answers(rt: Runtime) -> bool:
    with rt.journal.engine.connect() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1


def _try(check: Any) -> str:
    try:
        return "ok" if check() else "failed"
    except Exception as exc:  # noqa: BLE001 - any failure means: not ready; say which kind
        return f"failed: {type(exc).__name__}"


@bp.route("/metrics")
def metrics_page() -> Response:
    """Prometheus' text format: every process's counters and the queue's gauges."""
    body, content_type = metrics.exposition(_runtime().redis)
    return Response(body, content_type=content_type)
