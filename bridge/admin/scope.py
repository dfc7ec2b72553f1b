"""What every admin page shares: the chosen tenant and period, rendering, downloads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request, url_for

from bridge import clock
from bridge.admin.auth import runtime, visible_tenants
from bridge.config import Tenant
from bridge.reports.tables import CONTENT_TYPES, FORMATS, Table, export
from bridge.reports.verdicts import Period

DEFAULT_DAYS = 30

Builder = Callable[["Scope"], Table]
REPORTS: dict[str, Builder] = {}
"""Report name -> what builds its table for a scope (every page's "CSV" / "XLSX" links)."""


def report(name: str) -> Callable[[Builder], Builder]:
    """Register a report builder under ``name`` for the export links."""

    def register(builder: Builder) -> Builder:
        REPORTS[name] = builder
        return builder

    return register


@dataclass(frozen=True)
class Scope:
    """The tenant and period a page shows (from the query string)."""

    tenant: Tenant
    since: date
    until: date

    @property
    def period(self) -> Period:
        """From the start of ``since`` to the end of ``until``, in the tenant's zone."""
        zone = ZoneInfo(self.tenant.config.timezone)
        start = datetime.combine(self.since, time(0), zone)
        end = datetime.combine(self.until + timedelta(days=1), time(0), zone)
        return Period(start, end)

    def args(self, **more: Any) -> dict[str, Any]:
        """Query arguments that keep this scope on a link."""
        return {
            "tenant": self.tenant.name,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            **more,
        }

    def people(self) -> dict[str, str]:
        """CRM user id -> the mapping's name for that person."""
        return {uid: alias for alias, uid in self.tenant.mapping.users.items()}


def current_scope() -> Scope:
    """The scope the request asks for; 404 for a tenant the user may not see."""
    allowed = visible_tenants()
    name = request.args.get("tenant") or (allowed[0] if allowed else "")
    tenant = runtime().tenant(name)
    if tenant is None or name not in allowed:
        abort(404)
    today = clock.utcnow().astimezone(ZoneInfo(tenant.config.timezone)).date()
    until = _date(request.args.get("until"), today)
    since = _date(request.args.get("since"), until - timedelta(days=DEFAULT_DAYS - 1))
    return Scope(tenant, min(since, until), until)


def _date(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        abort(400, description=f"дата {text!r} должна выглядеть как 2025-01-31")


def page(template: str, scope: Scope | None, **context: Any) -> str:
    """Render an admin page with the navigation's tenant and period."""
    return render_template(
        f"admin/{template}", scope=scope, tenants=visible_tenants(), exports=_exports, **context
    )


def _exports(name: str, scope: Scope, **more: Any) -> list[tuple[str, str]]:
    """The download links of one report: (format, URL)."""
    return [
        (fmt.upper(), url_for("admin.export", name=name, fmt=fmt, **scope.args(**more)))
        for fmt in FORMATS
    ]


def download(table: Table, fmt: str, scope: Scope) -> Response:
    """A report as a file attachment."""
    if fmt not in FORMATS:
        abort(404)
    filename = f"{table.name}-{scope.tenant.name}-{scope.since}-{scope.until}.{fmt}"
    return Response(
        export(table, fmt),
        content_type=CONTENT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
