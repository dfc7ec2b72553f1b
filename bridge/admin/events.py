"""The event journal: filters, pages, and one event opened into decisions and actions."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from flask_login import login_required

from bridge.admin import bp
from bridge.admin.auth import runtime
from bridge.admin.scope import Scope, current_scope, page, report
from bridge.masking import redact
from bridge.models import EVENT_TYPES
from bridge.reports import queries
from bridge.reports.tables import Table

FILTERS = ("status", "type", "record_id", "rule", "breaches")


def _filter(scope: Scope) -> queries.EventFilter:
    args = request.args
    offset = args.get("offset", "0")
    return queries.EventFilter(
        tenant=scope.tenant.name,
        period=scope.period,
        status=args.get("status", ""),
        type=args.get("type", ""),
        record_id=args.get("record_id", "").strip(),
        rule=args.get("rule", ""),
        breaches=bool(args.get("breaches")),
        offset=int(offset) if offset.isdigit() else 0,
    )


@report("journal")
def journal_table(scope: Scope) -> Table:
    """The filtered journal as a table."""
    return queries.events_table(runtime().journal, _filter(scope))


@bp.route("/journal")
@login_required
def journal() -> Any:
    """Events of the period, newest first, narrowed by status, type, record, rule."""
    scope = current_scope()
    chosen = _filter(scope)
    rows, more = queries.events(runtime().journal, chosen)
    kept = {k: request.args[k] for k in FILTERS if request.args.get(k)}
    return page(
        "journal.html",
        scope,
        rows=rows,
        more=more,
        chosen=chosen,
        kept=kept,
        page_size=queries.PAGE,
        statuses=queries.statuses(runtime().journal, scope.tenant.name),
        types=EVENT_TYPES + ("alert",),
        rules=[r.id for r in scope.tenant.rules],
    )


@bp.route("/journal/<int:event_id>")
@login_required
def event(event_id: int) -> Any:
    """One event: its decisions (why each rule did or did not act) and actions."""
    scope = current_scope()
    found = queries.event_detail(runtime().journal, scope.tenant.name, event_id)
    if found is None:
        abort(404)
    return page("event.html", scope, found=found, redact=redact, people=scope.people())
