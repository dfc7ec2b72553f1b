"""Try a rule before going live: a record fetched from the CRM or pasted, an event, the plan.

Nothing is written anywhere: the plan comes from :func:`bridge.dryrun.plan`, the engine's
pure evaluation, and the page shows why each rule did or did not fire.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask_login import login_required

from bridge import dryrun
from bridge.admin import bp
from bridge.admin.auth import runtime
from bridge.admin.scope import current_scope, page
from bridge.errors import BridgeError
from bridge.models import EVENT_TYPES, Plan

EVENTS = tuple(t for t in EVENT_TYPES if t not in ("timer.due", "sweep"))
VERDICTS = {
    "fired": "сработало",
    "scheduled": "поставлен таймер",
    "satisfied": "выполнено",
    "not_matched": "не подходит",
}


@bp.route("/try", methods=["GET", "POST"])
@login_required
def try_rule() -> Any:
    """The form; on POST, the plan the engine makes for the event described."""
    scope = current_scope()
    form = request.form
    plan: Plan | None = None
    error = ""
    if request.method == "POST":
        try:
            plan = _plan(scope.tenant, form)
        except (ValueError, KeyError, TypeError, BridgeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    kinds = list(scope.tenant.mapping.kinds)
    return page(
        "try.html",
        scope,
        form=form,
        plan=plan,
        error=error,
        events=EVENTS,
        kinds=kinds,
        verdicts=VERDICTS,
    )


def _plan(tenant: Any, form: Any) -> Plan:
    data: dict[str, Any] = {
        "tenant": tenant.name,
        "type": form.get("type", "record.updated"),
        "kind": form.get("kind", "deal"),
        "id": form.get("record_id", "").strip() or "1",
    }
    if form.get("at"):
        data["at"] = form["at"] if "+" in form["at"] else form["at"] + "+00:00"
    if form.get("source") == "paste":
        data["record"] = _json(form.get("record", ""), "запись")
        if form.get("previous", "").strip():
            data["previous"] = {
                "kind": data["kind"],
                "id": data["id"],
                "crm": tenant.config.crm,
                **_json(form["previous"], "прежнее состояние"),
            }
    rt = runtime()
    return dryrun.plan(tenant, data, rt.connector(tenant), rt.journal)


def _json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}: не JSON ({exc.msg}, строка {exc.lineno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what}: нужен объект JSON {{...}}")
    return value
