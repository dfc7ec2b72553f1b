"""Conditions on the record itself: its fields (typed, compared with other fields or the
tenant's constants), a surname in a text, time in stage, and its history of changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from bridge.calendar import as_datetime
from bridge.regulations.condition_base import (
    ConditionBase,
    Count,
    age_test,
    deadline_text,
    ref_constants,
    ref_fields,
)
from bridge.regulations.values import Ref, compare, equal, is_empty, mentions, resolve

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


class FieldCondition(ConditionBase):
    """A test of one canonical field: exactly one operator besides ``field``.

    Emptiness and comparisons follow the field's type in the tenant's mapping
    (:mod:`bridge.regulations.values`); an operand may be a reference to another field or to
    a tenant's constant.
    """

    field: str
    empty: bool | None = None
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | Ref | None = Field(default=None, alias="in")
    not_in: list[Any] | Ref | None = None
    gt: float | Ref | None = None
    gte: float | Ref | None = None
    lt: float | Ref | None = None
    lte: float | Ref | None = None
    contains: str | None = None
    older_than: str | None = Field(default=None, description="a date field at least this old")
    newer_than: str | None = Field(default=None, description="a date field younger than this")

    _durations = field_validator("older_than", "newer_than")(deadline_text)
    _refs = field_validator("equals", "not_equals", mode="before")(
        lambda v: Ref.model_validate(v) if isinstance(v, dict) else v
    )

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
            return age_test(op, since, self._operand(op), scope)
        kind = scope.types.get(self.field)
        return _test(op, value, resolve(self._operand(op), scope), kind, scope)

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads (a referenced field too)."""
        yield self.field
        yield from ref_fields(*(self._operand(op) for op in OPERATORS))

    def constants(self) -> Iterator[str]:
        """The constants its operand names."""
        yield from ref_constants(*(self._operand(op) for op in OPERATORS))


class Mentions(ConditionBase):
    """A text names one of the tenant's people by surname, with ``words`` more words beside.

    ``{field: comments, mentions: staff, words: 2}``: the comment of a cancelled order holds
    the surname of one of the staff (``staff`` in the tenant file) and the reason.
    ``mentions`` is ``staff`` (everyone with a surname) or a role (its members).
    """

    field: str
    mentions: str = Field(description="'staff', or a role whose members' surnames count")
    words: int = Field(default=0, ge=0, description="at least this many other words")

    def holds(self, scope: Scope) -> bool:
        """Is a surname there, with enough words beside it?"""
        if self.mentions == "staff":
            names = list(scope.surnames.values())
        else:
            ids = scope.people.get(self.mentions, ())
            names = [scope.surnames[i] for i in ids if i in scope.surnames]
        return mentions(scope.record.value(self.field), names, self.words)

    def fields(self) -> Iterator[str]:
        """The text field it reads."""
        yield self.field


class StageAge(ConditionBase):
    """The record has stood in its current stage at least this long."""

    stage_age: str

    _durations = field_validator("stage_age")(deadline_text)

    def holds(self, scope: Scope) -> bool:
        """Is the stay at least ``stage_age`` old?"""
        return age_test("older_than", scope.stage_since, self.stage_age, scope)


class Changes(ConditionBase):
    """How many times a field changed: over the record's history, or over every record of
    its client (``per: client``, the client being the record's ``contact_id``)."""

    changes: str
    count: Count
    per: Literal["record", "client"] = "record"

    def holds(self, scope: Scope) -> bool:
        """Does the number of changes satisfy ``count``?"""
        history = scope.client_history if self.per == "client" else scope.history
        return self.count.holds(history.get(self.changes, 0), scope)

    def constants(self) -> Iterator[str]:
        """The constants its count names."""
        yield from self.count.constants()

    def fields(self) -> Iterator[str]:
        """The field it counts."""
        yield self.changes


class Changed(ConditionBase):
    """The field's value differs from the one in the previous snapshot (this event changed it)."""

    changed: str

    def holds(self, scope: Scope) -> bool:
        """Did this event change the field? A record seen for the first time has no previous
        value, so nothing changed (a new lead's price is not "changed")."""
        if scope.previous is None:
            return False
        kind = scope.types.get(self.changed)
        before, after = scope.previous.value(self.changed), scope.record.value(self.changed)
        if is_empty(before, kind) and is_empty(after, kind):
            return False
        return not equal(before, after, kind)

    def fields(self) -> Iterator[str]:
        """The field it watches."""
        yield self.changed


def _test(op: str, value: Any, operand: Any, kind: str | None, scope: Scope) -> bool:
    if op == "empty":
        return is_empty(value, kind) == operand
    if op in ("equals", "not_equals"):
        same = equal(value, operand, kind)
        return same if op == "equals" else not same
    if op in ("in", "not_in"):
        items = operand if isinstance(operand, list | tuple) else [operand]
        inside = any(equal(value, o, kind) for o in items)
        return inside if op == "in" else not inside
    if op == "contains":
        return operand.lower() in str(value or "").lower()
    return compare(value, operand, op, kind, scope.calendar.timezone)
