"""Scenario files: a pack's rules tested with no CRM and no Redis.

A scenario plays steps through the pure engine: given a record and what the bridge saw
before, when an event happens at a given time, expect these actions and these timers. The
runner keeps what the pipeline keeps between events: the snapshot, the stay, the timers, the
actions already done (a rule acts once per stay). The bridge's own writes (fields, stage,
responsible) reach the record as they would in the CRM, and their echo is evaluated like any
change. A scenario that names its tenant inherits its calendar, roles, staff and mapping, and
may then use the tenant's words: user aliases, and the CRM's own stage ids and field codes
(translated, or refused with the canonical name). See docs/configuration.md, "Scenario files".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from bridge import actions, yamlfile
from bridge.calendar import BusinessCalendar
from bridge.config import Settings, Tenant, WorkingHours, parse_hours
from bridge.errors import ConfigError
from bridge.mappings import Mapping
from bridge.models import EVENT_TYPES, Action, Decision, Event, Plan, Record, Timer
from bridge.regulations.conditions import ActivityMatch
from bridge.regulations.engine import Context, Facts, evaluate
from bridge.regulations.pack import Pack, load_pack
from bridge.scenario_compare import Expect, compare
from bridge.vocabulary import Vocabulary, WordError, activity
from bridge.yamlfile import Strict

FACT_KEYS = (
    *("stage_since", "emails_sent", "history", "client_history", "lookups", "activity"),
    "planned_at",
)
ECHOES = 3
"""How many rounds of the bridge's own writes echoing back a step plays (a chain of rules)."""


class Step(Strict):
    """One event of a scenario."""

    at: datetime = Field(description="when it happens (with its UTC offset)")
    event: str = Field(default="record.updated", description="the event type")
    record: dict[str, Any] | None = Field(default=None, description="the record now (full)")
    change: dict[str, Any] | None = Field(default=None, description="or: what changed")
    timer: str | None = Field(default=None, description="timer.due: the rule whose timer fires")
    rule: str | None = Field(
        default=None,
        description="broadcast: the rule run (`bridge broadcast T RULE`); all when left out",
    )
    activity: ActivityMatch | None = Field(
        default=None, description="activity.created: the activity (type, direction, completed)"
    )
    facts: dict[str, Any] = Field(
        default_factory=dict, description="what the bridge would know besides the record"
    )
    expect: Expect = Field(default_factory=Expect)

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            hint = yamlfile.suggest(value, EVENT_TYPES)
            raise ValueError(f"unknown event {value!r}{hint}; one of {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("facts")
    @classmethod
    def _known_facts(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key not in FACT_KEYS:
                hint = yamlfile.suggest(str(key), FACT_KEYS)
                raise ValueError(f"unknown fact {key!r}{hint}; one of {', '.join(FACT_KEYS)}")
        return value


class Scenario(Strict):
    """A scenario file."""

    scenario: str = Field(description="what it shows, in one line")
    tenant: str | None = Field(
        default=None,
        description="a tenant of the config: its calendar, roles, staff and mapping apply",
    )
    covers: list[str] = Field(default_factory=list, description="rule ids it proves")
    timezone: str | None = Field(default=None, description="default: the tenant's, or Moscow")
    working_hours: WorkingHours | None = Field(
        default=None, description="default: the tenant's, or mon-fri 09:00-18:00"
    )
    people: dict[str, str | list[str]] = Field(
        default_factory=dict, description="roles -> user ids (added to the tenant's)"
    )
    staff: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="user id -> working hours (added to the tenant's)"
    )
    surnames: dict[str, str] = Field(
        default_factory=dict, description="user id -> surname (added to the tenant's)"
    )
    constants: dict[str, Any] = Field(
        default_factory=dict, description="constants over the pack's defaults (and the tenant's)"
    )
    mapping: str | None = Field(
        default=None,
        description="without `tenant`: a mapping file (relative to this one): labels and types",
    )
    previous: dict[str, Any] | None = Field(
        default=None, description="the record as the bridge saw it last"
    )
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


class StepError(Exception):
    """A step that cannot be played as written (its message says why)."""


def scenario_files(pack_path: Path) -> list[Path]:
    """The scenario files of a pack: ``scenarios/<pack file stem>/*.yaml`` beside it."""
    folder = pack_path.parent / "scenarios" / pack_path.stem
    return sorted(folder.glob("*.yaml"))


def run_file(pack: Pack, path: Path, settings: Callable[[], Settings] | None = None) -> Result:
    """Run one scenario file against a pack.

    Args:
        pack: the pack under test.
        path: the scenario file.
        settings: loads the config, called only when a scenario names its ``tenant``.

    Raises:
        ConfigError: the file is not a valid scenario (file:line of each problem).
    """
    doc = yamlfile.load(path)
    scenario: Scenario = yamlfile.validate(Scenario, doc)
    result = Result(path, scenario.scenario)
    tenant = _tenant(scenario, doc, settings)
    mapping = _mapping(path.parent / scenario.mapping) if scenario.mapping else None
    try:
        state = _State(scenario, tenant, pack, mapping)
    except WordError as exc:
        where = doc.where(("previous", *exc.key))
        raise ConfigError([f"{where}: previous: {exc}"]) from None
    for i, step in enumerate(scenario.steps):
        try:
            plan = state.play(pack, step)
        except WordError as exc:
            part = "record" if step.record is not None else "change"
            where = doc.where(("steps", i, part, *exc.key))
            result.problems.append(f"{where}: step {i + 1}: {part}: {exc}")
            break  # later steps build on this one
        except (StepError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            message = exc.args[0] if isinstance(exc, StepError | ValueError) else repr(exc)
            result.problems.append(f"{doc.where(('steps', i))}: step {i + 1}: {message}")
            break
        words = tenant.mapping.users if tenant else {}
        for problem in compare(step.expect, plan, words):
            result.problems.append(f"{doc.where(('steps', i, 'expect'))}: step {i + 1}: {problem}")
    return result


def run_pack(pack_path: Path, settings: Callable[[], Settings] | None = None) -> list[Result]:
    """Run every scenario of a pack file."""
    pack, _ = load_pack(pack_path)
    return [run_file(pack, path, settings) for path in scenario_files(pack_path)]


def _tenant(
    scenario: Scenario, doc: yamlfile.YamlDoc, settings: Callable[[], Settings] | None
) -> Tenant | None:
    if scenario.tenant is None:
        return None
    known = settings().tenants if settings else {}
    if scenario.tenant not in known:
        hint = yamlfile.suggest(scenario.tenant, known)
        listing = ", ".join(known) or "none (no config loaded)"
        raise ConfigError(
            [
                f"{doc.where(('tenant',))}: tenant: unknown tenant {scenario.tenant!r}{hint}; "
                f"the config's tenants: {listing}"
            ]
        )
    return known[scenario.tenant]


class _State:
    """What the pipeline would remember between events: snapshot, stay, timers, done keys."""

    def __init__(
        self, scenario: Scenario, tenant: Tenant | None, pack: Pack, mapping: Mapping | None
    ) -> None:
        self.tenant = tenant
        mapping = tenant.mapping if tenant else mapping or Mapping()
        self.extra = {
            "constants": {
                **pack.constants,
                **(tenant.constants() if tenant else {}),
                **scenario.constants,
            },
            "surnames": {**(tenant.surnames() if tenant else {}), **scenario.surnames},
            "labels": mapping.labels(),
            "types": mapping.types(),
        }
        self.calendar = _calendar(scenario, tenant)
        self.people = {**(tenant.people() if tenant else {}), **_people(scenario.people)}
        zone = self.calendar.timezone
        self.schedules = {
            **(tenant.schedules() if tenant else {}),
            **{u: BusinessCalendar(zone, parse_hours(h)) for u, h in scenario.staff.items()},
        }
        crm = tenant.config.crm if tenant else "scenario"
        self.words = Vocabulary(crm, tenant.mapping if tenant else None)
        self.previous = self.words.record(scenario.previous) if scenario.previous else None
        self.version = 1 if self.previous else 0
        self.stay = "1" if self.previous else "0"
        self.timers: dict[str, Timer] = {}
        self.done: set[str] = set()

    def play(self, pack: Pack, step: Step) -> Plan:
        """One step: its event, then the echo of the bridge's own writes, as one plan."""
        record = self._record(step)
        subject = self._subject(step)
        facts = _facts(step)
        first = _broadcast_of(pack, step) if step.event == "broadcast" and step.rule else pack
        plan = self._evaluate(first, step.event, record, step.at, facts, subject)
        for _ in range(ECHOES):
            written = _apply(record, plan.actions)
            if written == record:
                break
            echo = self._evaluate(pack, "record.updated", written, step.at, _still(facts), None)
            plan, record = _merge(plan, echo), written
        return plan

    def _evaluate(
        self, pack: Pack, kind: str, record: Record, at: datetime, facts: Facts, subject: str | None
    ) -> Plan:
        stay = self._stay(record)
        event = Event("scenario", record.crm, kind, record.ref, at, subject=subject)
        ctx = Context(at, self.calendar, stay, self.people, self.schedules, facts, **self.extra)
        plan = evaluate(event, record, self.previous, pack.rules, ctx)
        fresh = tuple(a for a in plan.actions if a.key not in self.done)
        self.done.update(a.key for a in fresh)
        self.timers.update({t.rule: t for t in plan.timers})
        self.previous, self.stay, self.version = record, stay, self.version + 1
        return replace(plan, actions=fresh)

    def _record(self, step: Step) -> Record:
        if step.record is not None:
            return self.words.record(step.record)
        if self.previous is None:
            raise StepError("the first step needs `record:` (or the scenario `previous:`)")
        data = self.previous.to_dict()
        change = dict(step.change or {})
        data["fields"] = {**data["fields"], **change.pop("fields", {})}
        return self.words.record({**data, **change})

    def _subject(self, step: Step) -> str | None:
        if step.event != "timer.due":
            return None
        timer = self.timers.get(step.timer or "")
        if timer is None:
            set_ = ", ".join(self.timers) or "none"
            raise StepError(
                f"timer.due needs `timer:` naming a rule whose timer an earlier step set "
                f"(set so far: {set_})"
            )
        return timer.subject

    def _stay(self, record: Record) -> str:
        if self.previous is None or self.previous.stage != record.stage:
            return str(self.version + 1)
        return self.stay


def _broadcast_of(pack: Pack, step: Step) -> Pack:
    """The pack with only the broadcast rule the step runs (as ``bridge broadcast`` does)."""
    found = [r for r in pack.rules if r.id == step.rule and "broadcast" in r.when.event]
    if not found:
        named = ", ".join(r.id for r in pack.rules if "broadcast" in r.when.event) or "none"
        raise StepError(f"rule: {step.rule!r} is no broadcast rule of the pack; its own: {named}")
    return pack.model_copy(update={"rules": found})


def _mapping(path: Path) -> Mapping:
    """A tenant's mapping file on its own (its labels and types; no CRM defaults)."""
    return yamlfile.validate(Mapping, yamlfile.load(path))


def _calendar(scenario: Scenario, tenant: Tenant | None) -> BusinessCalendar:
    if tenant is not None and scenario.timezone is None and scenario.working_hours is None:
        return tenant.calendar
    zone = scenario.timezone or (tenant.config.timezone if tenant else "Europe/Moscow")
    hours = scenario.working_hours or (
        tenant.config.working_hours if tenant else {"mon-fri": "09:00-18:00"}
    )
    off = tenant.config.days_off if tenant else ()
    extra = tenant.config.working_days if tenant else ()
    return BusinessCalendar(zone, parse_hours(hours), off, extra)


def _people(people: dict[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    return {k: (v,) if isinstance(v, str) else tuple(map(str, v)) for k, v in people.items()}


def _facts(step: Step) -> Facts:
    data = step.facts
    lookups = {
        rule: {name: tuple(Vocabulary().record(r) for r in found) for name, found in by.items()}
        for rule, by in (data.get("lookups") or {}).items()
    }
    since = data.get("stage_since")
    described = activity(step.activity)
    return Facts(
        stage_since=_when(since),
        lookups=lookups,
        emails_sent=frozenset(data.get("emails_sent") or ()),
        history=dict(data.get("history") or {}),
        client_history=dict(data.get("client_history") or {}),
        activity=described if described is not None else activity(data.get("activity")),
        planned_at=_when(data.get("planned_at")),
    )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _still(facts: Facts) -> Facts:
    """The facts of an echo: the same moment, but no activity (it is a record update)."""
    return replace(facts, activity=None)


def _apply(record: Record, done: tuple[Action, ...]) -> Record:
    """The record as the CRM holds it once the bridge's field, stage and owner writes land."""
    data = record.to_dict()
    for action in done:
        p = action.params
        if isinstance(p, actions.UpdateFields):
            for name, value in p.fields.items():
                if name in data and name not in ("fields", "kind", "id", "crm"):
                    data[name] = value
                else:
                    data["fields"] = {**data["fields"], name: value}
        elif isinstance(p, actions.MoveStage):
            data["stage"] = p.stage
            data["outcome"] = p.stage if p.stage in ("won", "lost") else "open"
        elif isinstance(p, actions.Reassign) and p.responsible:
            data["responsible"] = p.responsible
    return Record.from_dict(data)


def _merge(first: Plan, echo: Plan) -> Plan:
    """A step's plan and its echo's: every action and timer; a rule's verdict is the echo's
    where the echo made it act."""
    acted = {d.rule: d for d in echo.decisions if d.verdict in ("fired", "scheduled")}
    decisions: tuple[Decision, ...] = tuple(acted.get(d.rule, d) for d in first.decisions)
    return Plan(first.actions + echo.actions, decisions, first.timers + echo.timers)
