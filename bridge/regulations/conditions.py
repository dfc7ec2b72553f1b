"""Conditions on a record and what the bridge knows about it, written as YAML data.

Never evaluated as code: each form is a small model with a ``holds`` method.

- ``{field: amount, gt: 100000}``, ``{field: refusal_reason, empty: true}``,
  ``{field: client_class, in: [vip, supervip]}``
- ``{field: invoice_issued_at, older_than: "6 days"}`` (dates relative to now, calendar-aware)
- ``{stage_age: "7 days"}`` (time in the current stage)
- ``{lookup: same_monument, count: {gte: 1}}`` (other records found by a field)
- ``{email_sent: no_answer}`` (a template e-mail was sent in the current stay)
- ``{changes: offer_terms, count: {gte: 3}}`` (how often a field changed, from the journal)
- ``{changed: client_class}`` (this event changed the field)
- ``{today_between: ["11-15", "12-31"]}`` (a season, in the tenant's zone)
- ``{activity: {type: call, direction: incoming}}`` (the activity an event brings)
- ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Union
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from bridge.calendar import as_datetime
from bridge.deadlines import parse_deadline
from bridge.yamlfile import Strict

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope

OPERATORS = (
    "empty",
    "equals",
    "not_equals",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "older_than",
    "newer_than",
)


class _ConditionBase(Strict):
    """A condition: what it reads, for `bridge validate`."""

    def fields(self) -> Iterator[str]:
        """The canonical field names the condition reads."""
        yield from ()

    def lookups(self) -> Iterator[str]:
        """The look-up names the condition reads."""
        yield from ()


def deadline_text(value: str | None) -> str | None:
    """Validator: the text is a deadline expression (the error lists the accepted forms)."""
    if value is not None:
        parse_deadline(value)
    return value


class Count(_ConditionBase):
    """A comparison of a count: ``{gte: 1}``."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None
    equals: int | None = None

    def holds(self, n: int) -> bool:
        """Does ``n`` satisfy every bound given?"""
        checks = [
            (self.gt, n > (self.gt or 0)),
            (self.gte, n >= (self.gte or 0)),
            (self.lt, n < (self.lt or 0)),
            (self.lte, n <= (self.lte or 0)),
            (self.equals, n == self.equals),
        ]
        return all(ok for bound, ok in checks if bound is not None)


class FieldCondition(_ConditionBase):
    """A test of one canonical field: exactly one operator besides ``field``."""

    field: str
    empty: bool | None = None
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    contains: str | None = None
    older_than: str | None = Field(default=None, description="a date field at least this old")
    newer_than: str | None = Field(default=None, description="a date field younger than this")

    _durations = field_validator("older_than", "newer_than")(deadline_text)

    @model_validator(mode="after")
    def _one_operator(self) -> FieldCondition:
        given = [op for op in OPERATORS if self._operand(op) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a field condition needs exactly one operator of {', '.join(OPERATORS)}; "
                f"got {', '.join(given) or 'none'}"
            )
        return self

    def _operand(self, op: str) -> Any:
        return self.in_ if op == "in" else getattr(self, op)

    def holds(self, scope: Scope) -> bool:
        """Does the condition hold for the record in scope?"""
        value = scope.record.value(self.field)
        op = next(op for op in OPERATORS if self._operand(op) is not None)
        if op in ("older_than", "newer_than"):
            since = as_datetime(value, scope.calendar.timezone)
            return _age_test(op, since, self._operand(op), scope)
        return _test(op, value, self._operand(op))

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        yield self.field


class StageAge(_ConditionBase):
    """The record has stood in its current stage at least this long."""

    stage_age: str

    _durations = field_validator("stage_age")(deadline_text)

    def holds(self, scope: Scope) -> bool:
        """Is the stay at least ``stage_age`` old?"""
        return _age_test("older_than", scope.stage_since, self.stage_age, scope)


class LookupCondition(_ConditionBase):
    """How many records a rule's look-up found."""

    lookup: str
    count: Count = Field(default_factory=lambda: Count(gte=1))

    def holds(self, scope: Scope) -> bool:
        """Does the number of found records satisfy ``count``?"""
        return self.count.holds(len(scope.lookups.get(self.lookup, ())))

    def lookups(self) -> Iterator[str]:
        """The look-up it reads."""
        yield self.lookup


class EmailSent(_ConditionBase):
    """A template e-mail was sent to this record's client during the current stay."""

    email_sent: str

    def holds(self, scope: Scope) -> bool:
        """Was the template sent?"""
        return self.email_sent in scope.emails_sent


class Changes(_ConditionBase):
    """How many times a field changed over the record's history (journal)."""

    changes: str
    count: Count

    def holds(self, scope: Scope) -> bool:
        """Does the number of changes satisfy ``count``?"""
        return self.count.holds(scope.history.get(self.changes, 0))

    def fields(self) -> Iterator[str]:
        """The field it counts."""
        yield self.changes


class Changed(_ConditionBase):
    """The field's value differs from the one in the previous snapshot (this event changed it)."""

    changed: str

    def holds(self, scope: Scope) -> bool:
        """Did this event change the field?"""
        if scope.previous is None:
            return not is_empty(scope.record.value(self.changed))
        return scope.previous.value(self.changed) != scope.record.value(self.changed)

    def fields(self) -> Iterator[str]:
        """The field it watches."""
        yield self.changed


class ActivityMatch(_ConditionBase):
    """The activity an ``activity.created`` event brings: its type, direction, completion."""

    type: Literal["call", "email", "meeting", "task", "other"] | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    completed: bool | None = None


class ActivityCondition(_ConditionBase):
    """``{activity: {type: call, direction: incoming}}``: what the event's activity is."""

    activity: ActivityMatch

    def holds(self, scope: Scope) -> bool:
        """Does the event's activity match every key given?"""
        if scope.activity is None:
            return False
        wanted = self.activity.model_dump(exclude_none=True)
        return all(scope.activity.get(k) == v for k, v in wanted.items())


class TodayBetween(_ConditionBase):
    """Today (in the tenant's zone) lies in a yearly window: ``["11-15", "12-31"]`` (MM-DD)."""

    today_between: tuple[str, str]

    @field_validator("today_between")
    @classmethod
    def _dates(cls, value: tuple[str, str]) -> tuple[str, str]:
        for text in value:
            month, _, day = text.partition("-")
            if not (
                month.isdigit() and day.isdigit() and 1 <= int(month) <= 12 and 1 <= int(day) <= 31
            ):
                raise ValueError(f"{text!r} must be MM-DD, e.g. 12-31")
        return value

    def holds(self, scope: Scope) -> bool:
        """Is today within the window (a window may wrap over the New Year)?"""
        local = scope.now.astimezone(ZoneInfo(scope.calendar.timezone))
        today = f"{local.month:02d}-{local.day:02d}"
        start, end = (
            f"{int(a):02d}-{int(b):02d}" for a, b in (x.split("-") for x in self.today_between)
        )
        return start <= today <= end if start <= end else today >= start or today <= end


class AllOf(_ConditionBase):
    """Every condition holds."""

    all_: list[Condition] = Field(alias="all")

    def holds(self, scope: Scope) -> bool:
        """Do all hold?"""
        return all(c.holds(scope) for c in self.all_)

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        for c in self.all_:
            yield from c.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        for c in self.all_:
            yield from c.lookups()


class AnyOf(_ConditionBase):
    """At least one condition holds."""

    any_: list[Condition] = Field(alias="any")

    def holds(self, scope: Scope) -> bool:
        """Does any hold?"""
        return any(c.holds(scope) for c in self.any_)

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        for c in self.any_:
            yield from c.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        for c in self.any_:
            yield from c.lookups()


class Not(_ConditionBase):
    """The condition does not hold."""

    not_: Condition = Field(alias="not")

    def holds(self, scope: Scope) -> bool:
        """Does the inner condition fail?"""
        return not self.not_.holds(scope)

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        yield from self.not_.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        yield from self.not_.lookups()


Condition = Union[  # noqa: UP007 - a runtime alias with forward references
    FieldCondition,
    StageAge,
    LookupCondition,
    EmailSent,
    Changes,
    Changed,
    TodayBetween,
    ActivityCondition,
    AllOf,
    AnyOf,
    Not,
]
for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def is_empty(value: Any) -> bool:
    """Empty as a manager means it: None, blank text, an empty list, or ``0`` for list ids."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in ("", "0")
    if isinstance(value, list | tuple | dict):
        return not value or all(is_empty(v) for v in value)
    return False


def _test(op: str, value: Any, operand: Any) -> bool:
    if op == "empty":
        return is_empty(value) == operand
    if op in ("equals", "not_equals"):
        same = str(value) == str(operand) if value is not None else operand is None
        return same if op == "equals" else not same
    if op in ("in", "not_in"):
        inside = str(value) in {str(o) for o in operand}
        return inside if op == "in" else not inside
    if op == "contains":
        return operand.lower() in str(value or "").lower()
    return _compare(op, value, operand)


def _compare(op: str, value: Any, operand: float) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return {
        "gt": number > operand,
        "gte": number >= operand,
        "lt": number < operand,
        "lte": number <= operand,
    }[op]


def _age_test(op: str, since: datetime | None, duration: str, scope: Scope) -> bool:
    if since is None:
        return False  # an empty date is neither old nor new
    reached = parse_deadline(duration).due(scope.calendar, since) <= scope.now
    return reached if op == "older_than" else not reached
