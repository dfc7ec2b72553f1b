"""The regulations engine: event + record + previous snapshot + time + calendar -> plan.

Pure: no I/O, no clock reads, no globals. Everything comes in as arguments, which is what
makes a pack testable with scenario files and a dry run trivial. What the engine needs from
the outside world besides the record (look-ups, e-mails sent, history, time in stage) comes
in as :class:`Facts`, fetched beforehand by the pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.actions import ActionParams, NotRendered
from bridge.calendar import BusinessCalendar, as_datetime
from bridge.deadlines import parse_deadline
from bridge.models import Action, Decision, Event, LookupQuery, Plan, Record, Timer
from bridge.regulations.action_specs import ActionSpec, split_field_time
from bridge.regulations.conditions import ActivityPlanned
from bridge.regulations.explain import explain
from bridge.regulations.pack import Rule
from bridge.regulations.text import render
from bridge.regulations.values import is_empty
from bridge.templating import RENDER_ERRORS, failure

NOT_MATCHED, SATISFIED, FIRED, SCHEDULED = "not_matched", "satisfied", "fired", "scheduled"
MISSING, OVERDUE = "missing", "overdue"


@dataclass(frozen=True)
class Facts:
    """What the pipeline learned besides the record itself.

    Attributes:
        stage_since: when the record entered its current stage.
        lookups: rule id -> look-up name -> records found.
        emails_sent: templates sent to this record during the current stay.
        history: field -> how many times it changed (from the journal).
        client_history: the same over every record of the record's client.
        activity: what the event's activity is (type, direction, completed, outcome).
        planned_at: the due time of the record's nearest open activity, if any.
    """

    stage_since: datetime | None = None
    lookups: Mapping[str, Mapping[str, tuple[Record, ...]]] = field(default_factory=dict)
    emails_sent: frozenset[str] = frozenset()
    history: Mapping[str, int] = field(default_factory=dict)
    client_history: Mapping[str, int] = field(default_factory=dict)
    activity: Mapping[str, Any] | None = None
    planned_at: datetime | None = None


@dataclass(frozen=True)
class Context:
    """What the engine may know besides the event and the record.

    Attributes:
        now: the event's time; deadlines count from it, so a retried job plans the same.
        stay: an opaque token of the record's current stay in its stage; it scopes keys and
            timers, so a rule acts once per stay and again after a re-entry.
        people: user aliases and roles -> candidate CRM user ids, in order of preference.
        schedules: user id -> that person's working calendar (else the tenant's).
        constants: the tenant's values that packs refer to (thresholds, season dates).
        surnames: user id -> surname, for the staff the tenant lists.
        labels: record kind -> canonical field -> its human label in the tenant's CRM.
        types: record kind -> canonical field -> its type (how emptiness and equality work).
    """

    now: datetime
    calendar: BusinessCalendar
    stay: str = "0"
    people: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    schedules: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    facts: Facts = field(default_factory=Facts)
    constants: Mapping[str, Any] = field(default_factory=dict)
    surnames: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    types: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def label(self, kind: str, name: str) -> str:
        """A canonical field's human label for managers (the name itself when unlabelled)."""
        return self.labels.get(kind, {}).get(name, name)


@dataclass(frozen=True)
class Scope:
    """What a condition may read while one rule is judged."""

    record: Record
    now: datetime
    calendar: BusinessCalendar
    stage_since: datetime | None
    lookups: Mapping[str, tuple[Record, ...]]
    emails_sent: frozenset[str]
    history: Mapping[str, int]
    previous: Record | None = None
    activity: Mapping[str, Any] | None = None
    client_history: Mapping[str, int] = field(default_factory=dict)
    planned_at: datetime | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    surnames: Mapping[str, str] = field(default_factory=dict)
    people: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)


RUNS = frozenset({"sweep", "broadcast"})
"""Runs over many records that no record's change caused: they enter no stage, and judge only
the rules that name them."""


def evaluate(
    event: Event, record: Record, previous: Record | None, rules: Iterable[Rule], ctx: Context
) -> Plan:
    """Evaluate rules against one event and return the plan of actions with the reasons."""
    rules = list(rules)
    if event.type == "timer.due":
        return _timer_due(event, record, rules, ctx)
    types = event_types(event, record, previous, ctx.facts)
    actions: list[Action] = []
    decisions: list[Decision] = []
    timers: list[Timer] = []
    for rule in rules:
        scope = _scope(rule, record, ctx, previous)
        verdict, detail, missing = _judge(rule, types, record, previous, scope, ctx)
        due = None
        if verdict == FIRED and rule.timed:
            timer = _first_timer(event.tenant, rule, record, ctx)
            verdict, detail = _scheduled(timer, rule)
            timers.extend([timer] if timer else [])
            due = timer.due if timer else None
        elif verdict == FIRED:
            stay = (
                f"event:{event.id or event.received_at.isoformat()}"
                if rule.repeat == "per_event"
                else None
            )
            actions.extend(_actions(event.tenant, rule, 0, record, previous, missing, ctx, stay))
        breach = MISSING if verdict == FIRED and missing else ""
        decisions.append(Decision(rule.id, verdict, detail, breach, due))
    return Plan(tuple(actions), tuple(decisions), tuple(timers))


def event_types(
    event: Event, record: Record, previous: Record | None, facts: Facts | None = None
) -> set[str]:
    """The event's type plus what the diff and the facts reveal: ``stage.changed`` (the
    record entered a stage) and ``activity.completed`` (the event's activity is done)."""
    types = {event.type}
    if event.type not in RUNS and (previous is None or previous.stage != record.stage):
        types.add("stage.changed")
    activity = facts.activity if facts else None
    if event.type.startswith("activity.") and activity and activity.get("completed"):
        types.add("activity.completed")
    return types


def needed_lookups(
    event: Event, record: Record, previous: Record | None, rules: Iterable[Rule], ctx: Context
) -> dict[str, dict[str, LookupQuery]]:
    """The look-ups to run (rule id -> name -> query): only for rules that may still fire
    once their look-ups are known (their other conditions hold, a required field is empty),
    and never with an empty value as a filter (such a look-up finds nothing)."""
    types = event_types(event, record, previous, ctx.facts)
    out: dict[str, dict[str, LookupQuery]] = {}
    for rule in rules:
        if not rule.lookup or _mismatch(rule, types, record, previous, None):
            continue
        scope = _scope(rule, record, ctx, previous)
        if rule.when.if_ is not None and not rule.when.if_.possible(scope):
            continue
        if rule.require and not _missing(rule, record, ctx):
            continue
        context = _template_context(record, previous, [], rule, ctx)
        queries = {name: _query(q, record, context) for name, q in rule.lookup.items()}
        wanted = {name: q for name, q in queries.items() if q is not None}
        if wanted:
            out[rule.id] = wanted
    return out


def needs_planned(
    event: Event, record: Record, previous: Record | None, rules: Iterable[Rule], facts: Facts
) -> bool:
    """Must the pipeline find out whether an activity is planned for this event? Only when a
    rule that asks may be judged now: its ``when`` matches (``if`` asks), or its timer came due
    (``unless`` asks). A question to the CRM per event would cost a busy portal its budget."""
    if event.type == "timer.due":
        rule_id = (event.subject or "").split("|")[0]
        return any(r.id == rule_id and _asks_planned(r.unless) for r in rules)
    types = event_types(event, record, previous, facts)
    return any(
        _asks_planned(r.when.if_) and not _mismatch(r, types, record, previous, None) for r in rules
    )


def _asks_planned(cond: Any) -> bool:
    if cond is None:
        return False
    if isinstance(cond, ActivityPlanned):
        return True
    inner = getattr(cond, "all_", None) or getattr(cond, "any_", None) or []
    inner = [*inner, *([cond.not_] if hasattr(cond, "not_") else [])]
    return any(_asks_planned(c) for c in inner)


def _query(lookup: Any, record: Record, context: dict[str, Any]) -> LookupQuery | None:
    try:
        where = tuple((k, render(v, context)) for k, v in lookup.where.items())
    except RENDER_ERRORS:
        return None  # a filter this record cannot fill is not run, like an empty one
    if any(is_empty(value, "text") for _, value in where):
        return None  # "every open order with no phone" is not what a rule means
    exclude = record.ref if lookup.exclude_self else None
    return LookupQuery(lookup.kind, where, lookup.open_only, exclude, tuple(lookup.in_stage))


def _lookups(rule: Rule, ctx: Context) -> dict[str, tuple[Record, ...]]:
    """The rule's look-ups' records, each kept only when its look-up's ``if`` holds for it."""
    out = {}
    for name, found in ctx.facts.lookups.get(rule.id, {}).items():
        spec = rule.lookup.get(name)
        keep = spec.if_ if spec is not None else None
        out[name] = found if keep is None else tuple(r for r in found if keep.holds(_own(r, ctx)))
    return out


def _own(record: Record, ctx: Context) -> Scope:
    """A found record's own scope: its fields, the moment, the tenant's words; no history."""
    return Scope(
        record,
        ctx.now,
        ctx.calendar,
        None,
        {},
        frozenset(),
        {},
        constants=ctx.constants,
        surnames=ctx.surnames,
        people=ctx.people,
        types=ctx.types.get(record.kind, {}),
    )


def _scope(rule: Rule, record: Record, ctx: Context, previous: Record | None = None) -> Scope:
    f = ctx.facts
    return Scope(
        record,
        ctx.now,
        ctx.calendar,
        f.stage_since,
        _lookups(rule, ctx),
        f.emails_sent,
        f.history,
        previous,
        f.activity,
        f.client_history,
        f.planned_at,
        ctx.constants,
        ctx.surnames,
        ctx.people,
        ctx.types.get(record.kind, {}),
    )


def _missing(rule: Rule, record: Record, ctx: Context) -> list[str]:
    """The rule's required fields that are empty (by their types in the mapping)."""
    types = ctx.types.get(record.kind, {})
    return [name for name in rule.require if is_empty(record.value(name), types.get(name))]


def _judge(
    rule: Rule,
    types: set[str],
    record: Record,
    previous: Record | None,
    scope: Scope,
    ctx: Context,
) -> tuple[str, str, list[str]]:
    reason = _mismatch(rule, types, record, previous, scope)
    if reason:
        return NOT_MATCHED, reason, []
    missing = _missing(rule, record, ctx)
    held = [explain(rule.when.if_, scope)[1]] if rule.when.if_ is not None else []
    held += _found(rule, scope)
    if rule.require and not missing:
        filled = "required fields are filled: " + ", ".join(rule.require)
        return SATISFIED, "; ".join([filled, *held]), []
    detail = "missing: " + ", ".join(missing) if missing else "conditions met"
    return FIRED, "; ".join([detail, *held]), missing


def _found(rule: Rule, scope: Scope) -> list[str]:
    """What the rule's look-ups returned, for the journal."""
    out = []
    for name in rule.lookup:
        found = scope.lookups.get(name, ())
        ids = ", ".join(f"{r.kind} {r.id}" for r in found[:5])
        out.append(f"look-up {name} found {len(found)}" + (f": {ids}" if ids else ""))
    return out


def _mismatch(
    rule: Rule, types: set[str], record: Record, previous: Record | None, scope: Scope | None
) -> str:
    """Why the rule's ``when`` does not match ('' when it does); ``if`` only with a scope."""
    when = rule.when
    if when.kind and record.kind not in when.kind:
        return f"kind is {record.kind}"
    if when.event and not types & set(when.event):
        return f"event is {', '.join(sorted(types))}"
    if not when.event and types & RUNS:
        return "sweeps and broadcasts run only rules that ask for them"
    entered = "stage.changed" in types
    if when.stage_to and not (entered and any(record.in_stage(s) for s in when.stage_to)):
        return f"did not enter {', '.join(when.stage_to)}"
    if when.stage_from and not (
        entered and previous and any(previous.in_stage(s) for s in when.stage_from)
    ):
        return f"did not leave {', '.join(when.stage_from)}"
    if when.in_stage and not any(record.in_stage(s) for s in when.in_stage):
        return f"not in {', '.join(when.in_stage)}"
    if scope is not None and when.if_ is not None:
        held, why = explain(when.if_, scope)
        if not held:
            return "; ".join([f"condition does not hold: {why}", *_found(rule, scope)])
    return ""


# -- timers -------------------------------------------------------------------------------


def _first_timer(tenant: str, rule: Rule, record: Record, ctx: Context) -> Timer | None:
    if rule.within:
        due = parse_deadline(rule.within).due(ctx.calendar, ctx.now)
    else:
        due = field_time(rule.at, record, ctx.calendar)
        if due is None:
            return None
    return make_timer(tenant, rule.id, 0, due, record, ctx.stay)


def field_time(spec: str, record: Record, calendar: BusinessCalendar) -> datetime | None:
    """The time a ``"field"`` or ``"field + <deadline expression>"`` spec names, or None."""
    name, offset = split_field_time(spec)
    base = as_datetime(record.value(name), calendar.timezone)
    if base is None or offset is None:
        return base
    return parse_deadline(offset).due(calendar, base)


def _scheduled(timer: Timer | None, rule: Rule) -> tuple[str, str]:
    if timer is None:
        return NOT_MATCHED, f"{split_field_time(rule.at or '')[0]} is empty: nothing to wait for"
    return SCHEDULED, f"timer due {timer.due.isoformat(timespec='minutes')}"


def make_timer(
    tenant: str, rule: str, step: int, due: datetime, record: Record, stay: str
) -> Timer:
    """A timer with its deterministic id."""
    raw = f"{tenant}|{record.crm}|{record.kind}|{record.id}|{rule}|{step}|{stay}"
    timer_id = "timer-" + hashlib.sha256(raw.encode()).hexdigest()[:24]
    return Timer(timer_id, rule, step, due, record.ref, stay)


def _timer_due(event: Event, record: Record, rules: list[Rule], ctx: Context) -> Plan:
    rule_id, step_text, stay = (event.subject or "||").split("|")
    rule = next((r for r in rules if r.id == rule_id), None)
    step = int(step_text or 0)
    if rule is None or step >= len(rule.steps()):
        return Plan(
            decisions=(Decision(rule_id, NOT_MATCHED, "the rule is no longer in the pack"),)
        )
    scope = _scope(rule, record, ctx)
    if stay != ctx.stay and not rule.keep_after_stage_change:
        return Plan(decisions=(Decision(rule.id, NOT_MATCHED, "the record left the stage"),))
    if rule.unless is not None:
        held, why = explain(rule.unless, scope)
        if held:
            detail = f"`unless` holds on fresh data: {why}"
            return Plan(decisions=(Decision(rule.id, SATISFIED, detail),))
    moved = _moved(event.tenant, rule, step, record, ctx, stay)
    if moved:
        decision = Decision(rule.id, SCHEDULED, "the date moved", due=moved.due)
        return Plan(decisions=(decision,), timers=(moved,))
    actions = _actions(event.tenant, rule, step, record, None, [], ctx, stay)
    timers = _next_step(event.tenant, rule, step, record, ctx, stay)
    detail = f"step {step} due" + (f"; next step {timers[0].due:%Y-%m-%d %H:%M}" if timers else "")
    breach = OVERDUE if step == breach_step(rule) else ""
    due = timers[0].due if timers else None
    return Plan(tuple(actions), (Decision(rule.id, FIRED, detail, breach, due),), timers)


def breach_step(rule: Rule) -> int | None:
    """The timer step whose firing means the rule was broken, or None for a mere reminder.

    A ``within`` rule is broken when its deadline passes with ``unless`` still false (step
    0). An ``at`` rule's first step is the reminder at the date; it is broken when its first
    escalation fires (step 1), and never when it has none.
    """
    if rule.within:
        return 0
    if rule.at and rule.escalate:
        return 1
    return None


def _moved(
    tenant: str, rule: Rule, step: int, record: Record, ctx: Context, stay: str
) -> Timer | None:
    """For an ``at`` rule whose date now lies ahead: the timer at the new date."""
    if step or not rule.at:
        return None
    due = field_time(rule.at, record, ctx.calendar)
    return make_timer(tenant, rule.id, 0, due, record, stay) if due and due > ctx.now else None


def _next_step(
    tenant: str, rule: Rule, step: int, record: Record, ctx: Context, stay: str
) -> tuple[Timer, ...]:
    if step >= len(rule.escalate):
        return ()
    due = parse_deadline(rule.escalate[step].after).due(ctx.calendar, ctx.now)
    return (make_timer(tenant, rule.id, step + 1, due, record, stay),)


# -- actions ------------------------------------------------------------------------------


def _actions(
    tenant: str,
    rule: Rule,
    step: int,
    record: Record,
    previous: Record | None,
    missing: list[str],
    ctx: Context,
    stay: str | None = None,
) -> list[Action]:
    renderer = _Renderer(record, _template_context(record, previous, missing, rule, ctx), ctx)
    name = rule.id if step == 0 else f"{rule.id}#{step}"
    out = []
    for index, spec in enumerate(rule.steps()[step]):
        key = action_key(tenant, record, name, index, stay or ctx.stay)
        out.append(Action(key, rule.id, record.ref, _made(spec, renderer)))
    return out


def _made(spec: ActionSpec, renderer: _Renderer) -> ActionParams:
    """The action for one firing; where its template does not fit this record, an action that
    fails alone with the reason (the rule's and the event's other actions still act)."""
    try:
        return spec.body.render(renderer)
    except RENDER_ERRORS as exc:
        return NotRendered(spec.name, failure(exc))


def _template_context(
    record: Record, previous: Record | None, missing: list[str], rule: Rule, ctx: Context
) -> dict[str, Any]:
    def label(name: str) -> str:
        return ctx.label(record.kind, name)

    return {
        "record": record,
        "previous": previous,
        "missing": [label(name) for name in missing],  # what managers read: the CRM's labels
        "missing_fields": missing,
        "label": label,
        "rule": rule,
        "lookups": _lookups(rule, ctx),
        "constants": ctx.constants,
        "activity": ctx.facts.activity or {},
        "now": ctx.now,
    }


@dataclass(frozen=True)
class _Renderer:
    """One firing of a rule as an action spec sees it (:class:`pack.Renderer`)."""

    record: Record
    context: dict[str, Any]
    ctx: Context

    def text(self, source: str) -> str:
        return render(source, self.context)

    def value(self, value: Any) -> Any:
        return render(value, self.context) if isinstance(value, str) else value

    def person(self, spec: str, fallback: str | None = None) -> str | None:
        return _person(spec, self.record, self.ctx, self.context, fallback)

    def deadline(self, expression: str | None, field_time_spec: str | None) -> datetime | None:
        if field_time_spec:
            return field_time(field_time_spec, self.record, self.ctx.calendar)
        if expression:
            return parse_deadline(expression).due(self.ctx.calendar, self.ctx.now)
        return None

    def field(self, name: str) -> Any:
        return self.record.value(name)


def _person(
    spec: str, record: Record, ctx: Context, context: dict[str, Any], fallback: str | None = None
) -> str | None:
    """A user id: the record's responsible, one taken from the data (with a fallback: only
    when at work), or a role's member at work."""
    if spec == "responsible":
        return record.responsible
    if "{{" in spec:
        chosen = render(spec, context)
        if chosen and (fallback is None or _on_duty(chosen, ctx)):
            return chosen
        return _person(fallback, record, ctx, context) if fallback else None
    found = _on_duty(spec, ctx) or (_on_duty(fallback, ctx) if fallback else None)
    return found or _first(fallback or spec, ctx)


def _on_duty(spec: str, ctx: Context) -> str | None:
    """The first of a role's people at work now, or None when nobody is."""
    for user in ctx.people.get(spec, (spec,)):
        if ctx.schedules.get(user, ctx.calendar).is_working_time(ctx.now):
            return user
    return None


def _first(spec: str, ctx: Context) -> str | None:
    found = ctx.people.get(spec, (spec,))
    return found[0] if found else None  # a role nobody holds


def action_key(tenant: str, record: Record, rule: str, index: int, stay: str) -> str:
    """The idempotency key of one action: same inputs, same key, on every retry."""
    raw = f"{tenant}|{record.crm}|{record.kind}|{record.id}|{rule}|{index}|{stay}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
