"""Scenario files: a pack's rules tested with no CRM and no Redis.

A scenario plays steps through the pure engine: given a record and what the bridge saw
before, when an event happens at a given time, expect these actions and these timers. The
runner keeps the stay and the timers between steps the way the pipeline does, so a timer
set in one step can fire in a later one. See docs/configuration.md, "Scenario files".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from bridge import yamlfile
from bridge.calendar import BusinessCalendar
from bridge.config import parse_hours
from bridge.mappings import Mapping
from bridge.models import Action, Event, Plan, Record, Timer
from bridge.regulations.engine import Context, Facts, evaluate
from bridge.regulations.pack import Pack, load_pack
from bridge.yamlfile import Strict


class Expect(Strict):
    """What a step must produce; only the keys written are compared."""

    actions: list[dict[str, dict[str, Any]]] | None = None
    timers: list[dict[str, Any]] | None = None
    decisions: dict[str, str] = Field(default_factory=dict, description="rule id -> verdict")


class Step(Strict):
    """One event of a scenario."""

    at: datetime
    event: str = "record.updated"
    record: dict[str, Any] | None = Field(default=None, description="the record now (full)")
    change: dict[str, Any] | None = Field(default=None, description="or: what changed")
    timer: str | None = Field(default=None, description="timer.due: the rule whose timer fires")
    facts: dict[str, Any] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)


class Scenario(Strict):
    """A scenario file."""

    scenario: str
    covers: list[str] = Field(default_factory=list, description="rule ids in REGULATIONS.md")
    timezone: str = "Europe/Moscow"
    working_hours: dict[str, str] = Field(default_factory=lambda: {"mon-fri": "09:00-18:00"})
    people: dict[str, str | list[str]] = Field(default_factory=dict)
    staff: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="user id -> working hours"
    )
    surnames: dict[str, str] = Field(default_factory=dict, description="user id -> surname")
    constants: dict[str, Any] = Field(
        default_factory=dict, description="the tenant's constants (over the pack's defaults)"
    )
    mapping: str | None = Field(
        default=None,
        description="a tenant's mapping file (relative to this one): its labels and types",
    )
    previous: dict[str, Any] | None = None
    steps: list[Step] = Field(min_length=1)


@dataclass
class Result:
    """A scenario's outcome: the problems found, one line each (none: it passed)."""

    path: Path
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Did it pass?"""
        return not self.problems


def scenario_files(pack_path: Path) -> list[Path]:
    """The scenario files of a pack: ``scenarios/<pack file stem>/*.yaml`` beside it."""
    folder = pack_path.parent / "scenarios" / pack_path.stem
    return sorted(folder.glob("*.yaml"))


def run_file(pack: Pack, path: Path) -> Result:
    """Run one scenario file against a pack."""
    doc = yamlfile.load(path)
    scenario: Scenario = yamlfile.validate(Scenario, doc)
    result = Result(path, scenario.scenario)
    mapping = _mapping(path.parent / scenario.mapping) if scenario.mapping else Mapping()
    state = _State(scenario, pack, mapping)
    for i, step in enumerate(scenario.steps):
        plan = state.play(pack, step)
        for problem in compare(step.expect, plan):
            result.problems.append(f"{doc.where(('steps', i, 'expect'))}: step {i + 1}: {problem}")
    return result


def run_pack(pack_path: Path) -> list[Result]:
    """Run every scenario of a pack file."""
    pack, _ = load_pack(pack_path)
    return [run_file(pack, path) for path in scenario_files(pack_path)]


class _State:
    """What the pipeline would remember between events: snapshot, stay, timers."""

    def __init__(self, scenario: Scenario, pack: Pack, mapping: Mapping) -> None:
        self.extra = {
            "constants": {**pack.constants, **scenario.constants},
            "surnames": scenario.surnames,
            "labels": mapping.labels(),
            "types": mapping.types(),
        }
        self.calendar = BusinessCalendar(scenario.timezone, parse_hours(scenario.working_hours))
        self.people = {
            k: (v,) if isinstance(v, str) else tuple(v) for k, v in scenario.people.items()
        }
        self.schedules = {
            uid: BusinessCalendar(scenario.timezone, parse_hours(hours))
            for uid, hours in scenario.staff.items()
        }
        self.previous = _record(scenario.previous) if scenario.previous else None
        self.version = 1 if self.previous else 0
        self.stay = "1" if self.previous else "0"
        self.timers: dict[str, Timer] = {}

    def play(self, pack: Pack, step: Step) -> Plan:
        record = self._record(step)
        stay = self._stay(record)
        subject = None
        if step.event == "timer.due":
            timer = self.timers[step.timer or ""]
            subject = timer.subject
        event = Event("scenario", record.crm, step.event, record.ref, step.at, subject=subject)
        ctx = Context(
            step.at,
            self.calendar,
            stay,
            self.people,
            self.schedules,
            _facts(step.facts),
            **self.extra,
        )
        plan = evaluate(event, record, self.previous, pack.rules, ctx)
        self.timers.update({t.rule: t for t in plan.timers})
        self.previous, self.stay, self.version = record, stay, self.version + 1
        return plan

    def _record(self, step: Step) -> Record:
        if step.record is not None:
            return _record(step.record)
        if self.previous is None:
            raise ValueError("the first step needs `record` (or the scenario `previous`)")
        data = self.previous.to_dict()
        change = dict(step.change or {})
        data["fields"] = {**data["fields"], **change.pop("fields", {})}
        return Record.from_dict({**data, **change})

    def _stay(self, record: Record) -> str:
        if self.previous is None or self.previous.stage != record.stage:
            return str(self.version + 1)
        return self.stay


def _mapping(path: Path) -> Mapping:
    """A tenant's mapping file on its own (its labels and types; no CRM defaults)."""
    return yamlfile.validate(Mapping, yamlfile.load(path))


def _record(data: dict[str, Any]) -> Record:
    defaults = {"kind": "deal", "id": "1", "crm": "scenario", "responsible": "1", "title": ""}
    merged = {**defaults, **data}
    merged["id"] = str(merged["id"])
    merged["responsible"] = str(merged["responsible"]) if merged["responsible"] else None
    return Record.from_dict(merged)


def _facts(data: dict[str, Any]) -> Facts:
    lookups = {
        rule: {name: tuple(_record(r) for r in found) for name, found in by_name.items()}
        for rule, by_name in (data.get("lookups") or {}).items()
    }
    since = data.get("stage_since")
    return Facts(
        stage_since=datetime.fromisoformat(str(since)) if since else None,
        lookups=lookups,
        emails_sent=frozenset(data.get("emails_sent") or ()),
        history=dict(data.get("history") or {}),
        client_history=dict(data.get("client_history") or {}),
        activity=data.get("activity"),
        planned_at=_when(data.get("planned_at")),
    )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def compare(expect: Expect, plan: Plan) -> list[str]:
    """Differences between what a step expects and the plan, as readable lines."""
    problems: list[str] = []
    if expect.actions is not None:
        problems += _compare_actions(expect.actions, list(plan.actions))
    if expect.timers is not None:
        problems += _compare_timers(expect.timers, list(plan.timers))
    verdicts = {d.rule: d for d in plan.decisions}
    for rule, verdict in expect.decisions.items():
        got = verdicts.get(rule)
        if got is None or got.verdict != verdict:
            said = f"{got.verdict} ({got.detail})" if got else "no decision"
            problems.append(f"rule {rule}: expected {verdict}, got {said}")
    return problems


def _compare_actions(want: list[dict[str, dict[str, Any]]], got: list[Action]) -> list[str]:
    if len(want) != len(got):
        listing = "; ".join(f"{a.kind}: {a.describe()}" for a in got) or "none"
        return [f"expected {len(want)} action(s), got {len(got)}: {listing}"]
    problems = []
    for i, (w, a) in enumerate(zip(want, got, strict=True)):
        ((kind, params),) = w.items()
        if kind != a.kind:
            problems.append(f"action {i + 1}: expected {kind}, got {a.kind} ({a.describe()})")
            continue
        for key, value in (params or {}).items():
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
        want_dt = want if isinstance(want, datetime) else datetime.fromisoformat(str(want))
        return want_dt == got
    if isinstance(want, str) and isinstance(got, str) and want.endswith("..."):
        return got.startswith(want[:-3])
    return str(want) == str(got) if want is not None and got is not None else want == got


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)
