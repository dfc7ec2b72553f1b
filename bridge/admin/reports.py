"""The report pages: violations, SLA compliance, refusal reasons, and every export."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, url_for
from flask_login import login_required

from bridge import clock
from bridge.admin import bp, charts
from bridge.admin.auth import runtime
from bridge.admin.scope import REPORTS, Scope, current_scope, download, page, report
from bridge.reports import queries, sla, verdicts
from bridge.reports.tables import Table


@bp.route("/")
@login_required
def index() -> Any:
    """The violations page is the start page."""
    return redirect(url_for("admin.violations"))


def _violations(scope: Scope) -> list[verdicts.Judged]:
    return queries.judged(runtime().journal, scope.tenant.name, scope.period, breaches_only=True)


@report("violations-by-rule")
def by_rule(scope: Scope) -> Table:
    """Violations per rule."""
    return verdicts.per_rule(_violations(scope))


@report("violations-by-manager")
def by_manager(scope: Scope) -> Table:
    """Violations per manager."""
    return verdicts.per_manager(_violations(scope), scope.people())


@report("violations-by-stage")
def by_stage(scope: Scope) -> Table:
    """Violations per stage."""
    return verdicts.per_stage(_violations(scope))


@report("violations-by-rule-and-manager")
def by_rule_and_manager(scope: Scope) -> Table:
    """Who breaks which rule."""
    return verdicts.per_rule_and_manager(_violations(scope), scope.people())


@report("violations")
def every_violation(scope: Scope) -> Table:
    """Every violation, one row each."""
    return verdicts.listing(_violations(scope), scope.people())


@bp.route("/violations")
@login_required
def violations() -> Any:
    """Violations per rule, per manager and per stage, drawn as bar charts."""
    scope = current_scope()
    found = _violations(scope)
    people = scope.people()
    rule = verdicts.per_rule(found)
    manager = verdicts.per_manager(found, people)
    stage = verdicts.per_stage(found)
    sections = [
        ("violations-by-rule", rule, charts.bars(rule, label=0)),
        ("violations-by-manager", manager, charts.bars(manager)),
        ("violations-by-stage", stage, charts.bars(stage)),
    ]
    both = verdicts.per_rule_and_manager(found, people)
    return page("violations.html", scope, sections=sections, both=both, total=len(found))


@report("sla")
def sla_table(scope: Scope) -> Table:
    """SLA compliance per rule."""
    rt = runtime()
    period = scope.period
    now = clock.utcnow()
    until_now = verdicts.Period(period.since, max(now, period.until))
    items = queries.judged(rt.journal, scope.tenant.name, until_now)
    found = sla.episodes(
        items,
        queries.changes(rt.journal, scope.tenant.name, period.since),
        {r.id: r for r in scope.tenant.rules},
    )
    return sla.table(sla.compliance(found, period, now))


@bp.route("/sla")
@login_required
def sla_page() -> Any:
    """Share of deadlines kept per rule, with the median and 90th percentile of time taken."""
    scope = current_scope()
    table = sla_table(scope)
    chart = charts.bars(table, value=3, title="Доля случаев, выполненных в срок, %")
    timing = charts.grouped(table, values=(4, 5, 6), title="Время выполнения и срок, часы")
    return page("sla.html", scope, table=table, chart=chart, timing=timing)


@report("refusals")
def refusals_table(scope: Scope) -> Table:
    """Refusal reasons of the records lost in the period."""
    return queries.refusals(runtime().journal, scope.tenant.name, scope.period)


@bp.route("/refusals")
@login_required
def refusals() -> Any:
    """Why clients said no: the refusal reasons of records lost in the period."""
    scope = current_scope()
    table = refusals_table(scope)
    return page("refusals.html", scope, table=table, chart=charts.pie(table))


@bp.route("/export/<name>.<fmt>")
@login_required
def export(name: str, fmt: str) -> Any:
    """Any report as CSV or XLSX, for the scope in the query string."""
    builder = REPORTS.get(name)
    if builder is None:
        abort(404)
    scope = current_scope()
    return download(builder(scope), fmt, scope)
