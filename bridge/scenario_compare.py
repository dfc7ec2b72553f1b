"""What a scenario step expects, and the readable differences from what the engine planned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from bridge.models import Action, Plan, Timer
from bridge.yamlfile import Strict

PEOPLE_KEYS = ("responsible",)
"""Action keys holding a user id; with a tenant, an expectation may give an alias instead."""


class Expect(Strict):
    """What a step must produce; only the keys written are compared."""

    actions: list[dict[str, dict[str, Any] | None]] | None = Field(
        default=None, description="the actions, in order: `- create_task: {title: ...}`"
    )
    timers: list[dict[str, Any]] | None = Field(
        default=None, description="the timers set: `- {rule: ..., step: 0, due: ...}`"
    )
    decisions: dict[str, str] = Field(default_factory=dict, description="rule id -> verdict")


def compare(expect: Expect, plan: Plan, users: Mapping[str, str] | None = None) -> list[str]:
    """Differences between what a step expects and the plan, as readable lines.

    Args:
        expect: the step's ``expect``.
        plan: what the engine planned for the step.
        users: user aliases -> ids (the tenant's mapping), so that ``responsible: ivanova``
            matches user 3.
    """
    problems: list[str] = []
    if expect.actions is not None:
        problems += _compare_actions(expect.actions, list(plan.actions), users or {})
    if expect.timers is not None:
        problems += _compare_timers(expect.timers, list(plan.timers))
    verdicts = {d.rule: d for d in plan.decisions}
    for rule, verdict in expect.decisions.items():
        got = verdicts.get(rule)
        if got is None or got.verdict != verdict:
            said = f"{got.verdict} ({got.detail})" if got else "no decision (no such rule?)"
            problems.append(f"rule {rule}: expected {verdict}, got {said}")
    return problems


def _compare_actions(
    want: list[dict[str, dict[str, Any] | None]], got: list[Action], users: Mapping[str, str]
) -> list[str]:
    if len(want) != len(got) or any(len(w) != 1 for w in want):
        listing = "; ".join(f"{a.kind}: {a.describe()}" for a in got) or "none"
        return [f"expected {len(want)} action(s), got {len(got)}: {listing}"]
    problems = []
    for i, (w, a) in enumerate(zip(want, got, strict=True)):
        ((kind, params),) = w.items()
        if kind != a.kind:
            problems.append(f"action {i + 1}: expected {kind}, got {a.kind} ({a.describe()})")
            continue
        for key, value in (params or {}).items():
            if key in PEOPLE_KEYS and value is not None:
                value = users.get(str(value), value)
            got_value = getattr(a.params, key, None)
            if not _same(value, got_value):
                where = f"action {i + 1} {kind}.{key}"
                problems.append(f"{where}: expected {_show(value)}, got {_show(got_value)}")
    return problems


def _compare_timers(want: list[dict[str, Any]], got: list[Timer]) -> list[str]:
    if len(want) != len(got):
        listing = "; ".join(f"{t.rule}#{t.step} at {t.due.isoformat()}" for t in got) or "none"
        return [f"expected {len(want)} timer(s), got {len(got)}: {listing}"]
    problems = []
    for i, (w, t) in enumerate(zip(want, got, strict=True)):
        for key, value in w.items():
            got_value = getattr(t, key, None)
            if not _same(value, got_value):
                where = f"timer {i + 1} {key}"
                problems.append(f"{where}: expected {_show(value)}, got {_show(got_value)}")
    return problems


def _same(want: Any, got: Any) -> bool:
    if isinstance(got, datetime):
        try:
            want_dt = want if isinstance(want, datetime) else datetime.fromisoformat(str(want))
        except ValueError:
            return False
        return want_dt == got
    if isinstance(want, str) and isinstance(got, str) and want.endswith("..."):
        return got.startswith(want[:-3])
    return str(want) == str(got) if want is not None and got is not None else want == got


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)
