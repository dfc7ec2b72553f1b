"""The YAML language of a regulation pack: rules with when / require / then.

A pack is validated twice: by shape when it is loaded (pydantic, file:line per error) and
against the tenant's mapping by :func:`check` (unknown fields, stages, users are errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from bridge import actions, templating, yamlfile
from bridge.models import EVENT_TYPES, STANDARD_FIELDS
from bridge.regulations.action_specs import (
    ActionSpec,
    AppendRow,
    MoveStage,
    Notify,
    SendEmail,
    UpdateFields,
    field_time_text,
    split_field_time,
)
from bridge.regulations.conditions import Condition, deadline_text
from bridge.regulations.text import RULE_VARIABLES, unknown_names
from bridge.schedules import schedule_text
from bridge.yamlfile import Strict


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


OneOrMore = Annotated[
    list[str],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
"""A name or a list of names (``kind: deal`` or ``kind: [deal, lead]``)."""


class When(Strict):
    """What must happen for a rule to be considered."""

    event: OneOrMore = Field(default_factory=list, description="event types; any when empty")
    kind: OneOrMore = Field(default_factory=list, description="record kinds; any when empty")
    stage_to: OneOrMore = Field(default_factory=list, description="the stage was entered")
    stage_from: OneOrMore = Field(default_factory=list, description="the stage was left")
    in_stage: OneOrMore = Field(default_factory=list, description="the record stands in")
    if_: Condition | None = Field(default=None, alias="if", description="a field condition")

    @field_validator("event")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in EVENT_TYPES:
                hint = yamlfile.suggest(name, EVENT_TYPES)
                raise ValueError(f"unknown event {name!r}{hint}; one of {', '.join(EVENT_TYPES)}")
        return value


class Lookup(Strict):
    """Find other records by field values (``where`` values are templates)."""

    kind: str = "deal"
    where: dict[str, str] = Field(min_length=1)
    in_stage: list[str] = Field(
        default_factory=list, description="only records standing in these stages (or won/lost)"
    )
    open_only: bool = Field(default=False, description="only records not won or lost")
    exclude_self: bool = True
    if_: Condition | None = Field(
        default=None,
        alias="if",
        description="keep only the records found for which this holds (read on each of them)",
    )


class Escalation(Strict):
    """A further step of an SLA timer: when ``after`` more has passed and ``unless`` still fails."""

    after: str = Field(description="a deadline expression counted from the previous step")
    then: list[ActionSpec] = Field(min_length=1)

    _after = field_validator("after")(deadline_text)


class Rule(Strict):
    """One regulation rule."""

    id: str
    name: str = ""
    source: OneOrMore = Field(
        default_factory=list, description="the clauses of your regulation the rule encodes"
    )
    lookup: dict[str, Lookup] = Field(default_factory=dict, description="name -> look-up")
    when: When = Field(default_factory=When)
    require: list[str] = Field(default_factory=list, description="fields that must be filled")
    within: str | None = Field(
        default=None, description="SLA: act when this much has passed since the event"
    )
    at: str | None = Field(default=None, description="SLA: act at the time held in this field")
    unless: Condition | None = Field(
        default=None, description="checked again, on fresh data, when the timer fires"
    )
    escalate: list[Escalation] = Field(default_factory=list)
    keep_after_stage_change: bool = Field(
        default=False, description="a timer still acts after the record left the stage"
    )
    then: list[ActionSpec] = Field(min_length=1)

    every: str | None = Field(
        default=None,
        description="a sweep rule's own schedule: 'monday 10:00', '30 minutes', a cron "
        "expression (default: the pack's sweep_every)",
    )
    repeat: Literal["per_stay", "per_event"] = Field(
        default="per_stay",
        description="act once per stay in the stage (default) or once per event",
    )

    _within = field_validator("within")(deadline_text)
    _at = field_validator("at")(lambda v: field_time_text(v) and v)
    _every = field_validator("every")(schedule_text)

    @model_validator(mode="after")
    def _timer_shape(self) -> Rule:
        if self.within and self.at:
            raise ValueError(
                "a rule has either `within` (a delay) or `at` (a date field), not both"
            )
        if (self.unless or self.escalate) and not (self.within or self.at):
            raise ValueError("`unless` and `escalate` need a timer: add `within` or `at`")
        if self.every and "sweep" not in self.when.event:
            raise ValueError("`every` schedules a sweep: add `event: sweep` to `when`")
        return self

    @property
    def timed(self) -> bool:
        """Does the rule act later, through a timer?"""
        return bool(self.within or self.at)

    def steps(self) -> list[list[ActionSpec]]:
        """The actions of each timer step: ``then``, then each escalation's."""
        return [self.then, *(e.then for e in self.escalate)]


class Pack(Strict):
    """A regulation pack: the rules of one company's regulations."""

    version: Literal[1] = 1
    pack: str
    title: str = ""
    sweep_every: str | None = Field(
        default=None,
        description="when `sweep` rules without their own `every` run over all open records "
        "(a schedule: '60 minutes', 'monday 10:00'...; default hourly)",
    )
    constants: dict[str, Any] = Field(
        default_factory=dict,
        description="values the rules refer to ({constant: name}, {{ constants.name }}) with "
        "their defaults; null: the tenant must set it (bridge.yaml `constants:`)",
    )
    rules: list[Rule]

    _sweep = field_validator("sweep_every")(schedule_text)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice; ids must be unique")
            seen.add(rule.id)
        return rules


def load_pack(path: str | Path) -> tuple[Pack, yamlfile.YamlDoc]:
    """Load a pack file; returns the pack and its document (for file:line of later checks).

    Raises:
        bridge.errors.ConfigError: every shape error, with file:line.
    """
    doc = yamlfile.load(path)
    return yamlfile.validate(Pack, doc), doc


def check(pack: Pack, doc: yamlfile.YamlDoc, known: Known) -> list[str]:
    """Check a pack against what the tenant's mapping and roles define.

    Returns:
        One ``file:line: key: problem`` line per unknown field, stage or user.
    """
    return [
        f"{doc.where(loc)}: {yamlfile.dotted(loc)}: {msg}" for loc, msg in _problems(pack, known)
    ]


class Known(BaseModel):
    """Names a pack may use: fields and stages by record kind, people, e-mail templates, and
    what the tenant's CRM can do (the record kinds it offers, the actions on each)."""

    crm: str = "the CRM"
    fields: dict[str, set[str]]
    stages: dict[str, set[str]]
    people: set[str]
    templates: set[str] | None = None  # None: the tenant sends no e-mail
    actions: dict[str, frozenset[str]] | None = None  # kind -> CRM actions; None: not checked
    constants: dict[str, Any] = {}  # the tenant's own values (bridge.yaml `constants:`)
    labels: dict[str, set[str]] | None = None  # kind -> labelled fields; None: not checked
    channels: set[str] | None = None  # messenger channels (notify); None: not checked
    tables: dict[str, list[str]] | None = None  # table -> its columns; None: not checked


Problems = Iterator[tuple[tuple[Any, ...], str]]


def _problems(pack: Pack, known: Known) -> Problems:
    yield from _constant_problems(pack, known)
    for i, rule in enumerate(pack.rules):
        loc = ("rules", i)
        for j, kind in enumerate(rule.when.kind):
            if kind not in known.fields:
                what = f"record kind of {known.crm}"
                yield (*loc, "when", "kind", j), _unknown(what, kind, set(known.fields))
        kinds = [k for k in rule.when.kind if k in known.fields] or list(known.fields)
        fields = set.intersection(*(known.fields[k] for k in kinds)) | STANDARD_FIELDS
        stages = set.intersection(*(known.stages[k] for k in kinds))
        for key in ("stage_to", "stage_from", "in_stage"):
            for j, name in enumerate(getattr(rule.when, key)):
                if name not in stages:
                    yield (*loc, "when", key, j), _unknown("stage", name, stages)
        for key in ("if_", "unless"):
            cond = getattr(rule.when, key) if key == "if_" else rule.unless
            at = (*loc, "when", "if") if key == "if_" else (*loc, "unless")
            yield from _condition_problems(cond, at, fields, set(rule.lookup))
        for j, name in enumerate(rule.require):
            if name not in fields:
                yield (*loc, "require", j), _unknown("field", name, fields)
            elif name not in STANDARD_FIELDS:
                yield from _label_problems(name, (*loc, "require", j), kinds, known)
        if rule.at and split_field_time(rule.at)[0] not in fields:
            yield (*loc, "at"), _unknown("field", split_field_time(rule.at)[0], fields)
        yield from _lookup_problems(rule, loc, known)
        for at, specs in _steps(rule, loc):
            for j, spec in enumerate(specs):
                where = (*at, j, spec.name)
                yield from _action_problems(spec, where, fields, stages, known)
                yield from _executable(spec, where, kinds, known)
        yield from _template_problems(rule, loc, _names(pack, rule, kinds, known))


def _names(pack: Pack, rule: Rule, kinds: list[str], known: Known) -> templating.Names:
    """What the rule's texts may name: the engine's context, the fields of every kind the rule
    may meet, its look-ups and the constants."""
    custom = set.intersection(*(known.fields[k] for k in kinds)) - STANDARD_FIELDS
    found = {
        name: frozenset(known.fields.get(lookup.kind, set()) - STANDARD_FIELDS)
        for name, lookup in rule.lookup.items()
    }
    return templating.Names(
        variables=RULE_VARIABLES,
        fields=frozenset(custom),
        kinds=", ".join(kinds),
        lookups=found,
        constants=frozenset(pack.constants) | frozenset(known.constants),
    )


def _template_problems(rule: Rule, loc: tuple[Any, ...], names: templating.Names) -> Problems:
    """Each text of the rule rendered in the mind: a syntax error, or a name that its context
    will not have (a field the mapping lacks, a look-up the rule does not make)."""
    texts = [
        ((*loc, "lookup", name, "where", key), value)
        for name, lookup in rule.lookup.items()
        for key, value in lookup.where.items()
    ]
    for at, specs in _steps(rule, loc):
        for j, spec in enumerate(specs):
            texts += _strings(spec.body, (*at, j, spec.name))
    for at, source in texts:
        for line, problem in unknown_names(source, names):
            yield at, (f"template line {line}: {problem}" if line > 1 else problem)


def _strings(value: Any, loc: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Every text inside an action's keys, with its key path (templates are among them)."""
    if isinstance(value, BaseModel):
        return [
            p
            for name in type(value).model_fields
            for p in _strings(getattr(value, name), (*loc, name))
        ]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _strings(item, (*loc, i))]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _strings(item, (*loc, key))]
    return [(loc, value)] if isinstance(value, str) else []


def _steps(rule: Rule, loc: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], list[ActionSpec]]]:
    out = [((*loc, "then"), rule.then)]
    out += [((*loc, "escalate", k, "then"), e.then) for k, e in enumerate(rule.escalate)]
    return out


def _condition_problems(
    cond: Any, at: tuple[Any, ...], fields: set[str], lookups: set[str]
) -> Problems:
    if cond is None:
        return
    for name in cond.fields():
        if name not in fields:
            yield at, _unknown("field", name, fields)
    for name in cond.lookups():
        if name not in lookups:
            yield at, _unknown("look-up", name, lookups)


def _constant_problems(pack: Pack, known: Known) -> Problems:
    """Constants the rules name but the pack does not declare, and ones nobody set."""
    declared = set(pack.constants)
    for i, rule in enumerate(pack.rules):
        for key in ("if_", "unless"):
            cond = rule.when.if_ if key == "if_" else rule.unless
            at = ("rules", i, "when", "if") if key == "if_" else ("rules", i, "unless")
            for name in cond.constants() if cond is not None else ():
                if name not in declared:
                    yield at, _unknown("constant", name, declared) + " (declare it in `constants:`)"
    for name, default in pack.constants.items():
        if default is None and known.constants.get(name) is None:
            yield (
                ("constants", name),
                f"constant {name!r} has no default: set it in the tenant's `constants:`",
            )


def _label_problems(name: str, at: tuple[Any, ...], kinds: list[str], known: Known) -> Problems:
    """A field shown to managers (a required one) needs its label in the mapping."""
    if known.labels is None:
        return
    for kind in kinds:
        if name not in known.labels.get(kind, set()):
            yield (
                at,
                (
                    f"field {name!r} of {kind} has no label: managers would read the canonical "
                    f"name; give it one in the mapping ({name}: {{code: ..., label: ...}})"
                ),
            )


def _lookup_problems(rule: Rule, loc: tuple[Any, ...], known: Known) -> Problems:
    for name, lookup in rule.lookup.items():
        kind_fields = known.fields.get(lookup.kind)
        if kind_fields is None:
            yield (
                (*loc, "lookup", name, "kind"),
                _unknown("record kind", lookup.kind, set(known.fields)),
            )
            continue
        for field in lookup.where:
            if field not in kind_fields | STANDARD_FIELDS:
                yield (*loc, "lookup", name, "where", field), _unknown("field", field, kind_fields)
        stages = known.stages.get(lookup.kind, set())
        for j, stage in enumerate(lookup.in_stage):
            if stage not in stages:
                yield (*loc, "lookup", name, "in_stage", j), _unknown("stage", stage, stages)


def _action_problems(
    spec: ActionSpec, at: tuple[Any, ...], fields: set[str], stages: set[str], known: Known
) -> Problems:
    body = spec.body
    people = known.people | {"responsible"}
    at_field = getattr(body, "deadline_at", None)
    if at_field and split_field_time(at_field)[0] not in fields:
        yield (*at, "deadline_at"), _unknown("field", split_field_time(at_field)[0], fields)
    for key in ("responsible", "to", "fallback"):
        who = getattr(body, key, None)
        if isinstance(body, SendEmail | Notify) or who is None or who in people:
            continue
        if str(who).isdigit():
            continue
        if "{{" in str(who):
            continue  # a person taken from the data (a field, a look-up): checked when it runs
        yield (*at, key), _unknown("user or role", who, known.people)
    if isinstance(body, UpdateFields):
        for name in body.fields:
            if name not in fields:
                yield (*at, "fields", name), _unknown("field", name, fields)
    if isinstance(body, MoveStage) and body.stage not in stages:
        yield (*at, "stage"), _unknown("stage", body.stage, stages)
    if isinstance(body, SendEmail):
        yield from _email_problems(body, at, fields, known)
    if isinstance(body, Notify):
        yield from _notify_problems(body, at, fields, known)
    if isinstance(body, AppendRow):
        yield from _row_problems(body, at, known)


def _notify_problems(body: Notify, at: tuple[Any, ...], fields: set[str], known: Known) -> Problems:
    if known.channels is not None and body.channel not in known.channels:
        yield (
            (*at, "channel"),
            _unknown("channel", body.channel, known.channels)
            + (" (add it to the tenant's `channels:`)"),
        )
    for key in ("to", "region"):
        name = getattr(body, key)
        if name and name not in fields:
            yield (*at, key), _unknown("field", name, fields)


def _row_problems(body: AppendRow, at: tuple[Any, ...], known: Known) -> Problems:
    if known.tables is None:
        return
    columns = known.tables.get(body.table)
    if columns is None:
        yield (
            (*at, "table"),
            _unknown("table", body.table, set(known.tables))
            + (" (add it to the tenant's `tables:`)"),
        )
        return
    for column in body.row:
        if column not in columns:
            yield (*at, "row", column), _unknown("column", column, set(columns))


def _executable(spec: ActionSpec, at: tuple[Any, ...], kinds: list[str], known: Known) -> Problems:
    """An action the tenant's CRM cannot carry out on a kind the rule may meet."""
    if known.actions is None or actions.KINDS[spec.name].by != "crm":
        return
    for kind in kinds:
        can = known.actions.get(kind, frozenset())
        if spec.name not in can:
            listing = ", ".join(sorted(can)) or "none"
            yield at, f"{known.crm} cannot execute {spec.name} on a {kind} (it can: {listing})"


def _email_problems(
    body: SendEmail, at: tuple[Any, ...], fields: set[str], known: Known
) -> Problems:
    if known.templates is None:
        yield at, "the tenant has no `email:` settings; add them to send e-mail"
    elif body.template not in known.templates:
        yield (*at, "template"), _unknown("template", body.template, known.templates)
    if body.to not in ("client", "responsible") and body.to not in fields:
        yield (*at, "to"), _unknown("recipient", body.to, fields | {"client", "responsible"})
    if body.region and body.region not in fields:
        yield (*at, "region"), _unknown("field", body.region, fields)


def _unknown(what: str, name: str, choices: set[str]) -> str:
    hint = yamlfile.suggest(name, sorted(choices))
    listing = ", ".join(sorted(choices)) or "none defined"
    return f"unknown {what} {name!r}{hint}; known: {listing}"
