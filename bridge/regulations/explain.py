"""Why a condition held or not, in the words of the pack and with the values it saw.

``bridge explain`` and the journal show each rule's verdict with this text: which part of an
``all`` failed, what the field held, how many records a look-up found. Pure, like the engine:
it reads only the scope it is given. A condition form it does not know is shown as written,
with its verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope

HELD, FAILED = "✓", "✗"


def explain(condition: Any, scope: Scope) -> tuple[bool, str]:
    """Does the condition hold, and why: ``amount > 500000 ✓ (600000)``.

    Combinations list their parts: ``all of: [amount > 500000 ✓ (600000), stage_age 5
    working days ✗ (in the stage since 2025-11-12 10:00)]``.
    """
    for attr, word in (("all_", "all of"), ("any_", "any of")):
        parts = getattr(condition, attr, None)
        if isinstance(parts, list):
            results = [explain(part, scope) for part in parts]
            held = all(r[0] for r in results) if attr == "all_" else any(r[0] for r in results)
            return held, f"{word}: [{', '.join(text for _, text in results)}]"
    inner = getattr(condition, "not_", None)
    if inner is not None:
        held, text = explain(inner, scope)
        return not held, f"not ({text}) {FAILED if held else HELD}"
    held = bool(condition.holds(scope))
    seen = _seen(condition, scope)
    return held, f"{written(condition)} {HELD if held else FAILED}" + (f" ({seen})" if seen else "")


def written(condition: Any) -> str:
    """A condition as an admin wrote it, in flow YAML: ``{field: amount, gt: 500000}``."""
    return _flow(condition.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True))


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return "empty"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _seen(condition: Any, scope: Scope) -> str:
    """What the condition looked at, as the scope held it."""
    if isinstance(getattr(condition, "field", None), str):
        return f"{condition.field} is {_flow(scope.record.value(condition.field))!s}"
    if getattr(condition, "lookup", None):
        found = scope.lookups.get(condition.lookup, ())
        ids = ", ".join(f"{r.kind} {r.id}" for r in found[:5])
        return f"found {len(found)}" + (f": {ids}" if ids else "")
    if getattr(condition, "stage_age", None):
        if scope.stage_since is None:
            return "when it entered the stage is unknown"
        since = scope.stage_since.astimezone(ZoneInfo(scope.calendar.timezone))
        return f"in the stage since {since:%Y-%m-%d %H:%M}"
    if getattr(condition, "changed", None):
        before = scope.previous.value(condition.changed) if scope.previous else "(not seen)"
        return f"was {_flow(before)}, now {_flow(scope.record.value(condition.changed))}"
    if getattr(condition, "changes", None):
        return f"changed {scope.history.get(condition.changes, 0)} time(s)"
    if getattr(condition, "email_sent", None):
        return f"sent this stay: {', '.join(sorted(scope.emails_sent)) or 'none'}"
    if getattr(condition, "activity", None) is not None:
        return f"the activity: {_flow(dict(scope.activity)) if scope.activity else 'none'}"
    return ""
