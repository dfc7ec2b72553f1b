"""Conditions on a record and what the bridge knows about it, written as YAML data.

Never evaluated as code: each form is a small model with a ``holds`` method.

- ``{field: amount, gt: 100000}``, ``{field: refusal_reason, empty: true}``,
  ``{field: client_class, in: [vip, supervip]}``
- ``{field: created_at, gte: {field: event_date, minus: 7 days}}`` (two fields compared),
  ``{field: amount, gte: {constant: large_order}}`` (a tenant's constant)
- ``{field: invoice_issued_at, older_than: "6 days"}`` (dates relative to now, calendar-aware)
- ``{field: comments, mentions: staff, words: 2}`` (a staff surname and the reason, in a text)
- ``{stage_age: "7 days"}`` (time in the current stage)
- ``{lookup: same_monument, count: {gte: 1}}`` (other records found by a field)
- ``{email_sent: no_answer}`` (a template e-mail was sent in the current stay)
- ``{changes: offer_terms, count: {gte: 3}, per: client}`` (how often a field changed, from the
  journal: on this record, or on every record of its client)
- ``{changed: client_class}`` (this event changed the field)
- ``{today_between: ["11-15", "12-31"]}`` (a season, in the tenant's zone)
- ``{activity: {type: [call, meeting], completed: true}}`` (the activity an event brings)
- ``{activity_planned: true}`` (the record has an open activity or task ahead)
- ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``

Every condition also says whether it *could* hold before the rule's look-ups have run
(:meth:`possible`): a look-up is asked of the CRM only for a rule that may still fire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Union

from pydantic import Field

from bridge.regulations.condition_base import ConditionBase, Count, deadline_text
from bridge.regulations.event_conditions import (
    ActivityCondition,
    ActivityMatch,
    ActivityPlanned,
    EmailSent,
    LookupCondition,
    TodayBetween,
)
from bridge.regulations.record_conditions import (
    OPERATORS,
    Changed,
    Changes,
    FieldCondition,
    Mentions,
    StageAge,
)

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope

__all__ = [
    "OPERATORS",
    "ActivityCondition",
    "ActivityMatch",
    "ActivityPlanned",
    "AllOf",
    "AnyOf",
    "Changed",
    "Changes",
    "Condition",
    "Count",
    "EmailSent",
    "FieldCondition",
    "LookupCondition",
    "Mentions",
    "Not",
    "StageAge",
    "TodayBetween",
    "deadline_text",
]


class AllOf(ConditionBase):
    """Every condition holds."""

    all_: list[Condition] = Field(alias="all")

    def holds(self, scope: Scope) -> bool:
        """Do all hold?"""
        return all(c.holds(scope) for c in self.all_)

    def possible(self, scope: Scope) -> bool:
        """Could all hold?"""
        return all(c.possible(scope) for c in self.all_)

    def constants(self) -> Iterator[str]:
        """The constants it reads."""
        for c in self.all_:
            yield from c.constants()

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        for c in self.all_:
            yield from c.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        for c in self.all_:
            yield from c.lookups()


class AnyOf(ConditionBase):
    """At least one condition holds."""

    any_: list[Condition] = Field(alias="any")

    def holds(self, scope: Scope) -> bool:
        """Does any hold?"""
        return any(c.holds(scope) for c in self.any_)

    def possible(self, scope: Scope) -> bool:
        """Could any hold?"""
        return any(c.possible(scope) for c in self.any_)

    def constants(self) -> Iterator[str]:
        """The constants it reads."""
        for c in self.any_:
            yield from c.constants()

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        for c in self.any_:
            yield from c.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        for c in self.any_:
            yield from c.lookups()


class Not(ConditionBase):
    """The condition does not hold."""

    not_: Condition = Field(alias="not")

    def holds(self, scope: Scope) -> bool:
        """Does the inner condition fail?"""
        return not self.not_.holds(scope)

    def possible(self, scope: Scope) -> bool:
        """Could the inner one fail? Always, while it waits for a look-up."""
        return True if any(self.not_.lookups()) else not self.not_.holds(scope)

    def constants(self) -> Iterator[str]:
        """The constants it reads."""
        yield from self.not_.constants()

    def fields(self) -> Iterator[str]:
        """The canonical field names it reads."""
        yield from self.not_.fields()

    def lookups(self) -> Iterator[str]:
        """The look-ups it reads."""
        yield from self.not_.lookups()


Condition = Union[  # noqa: UP007 - a runtime alias with forward references
    FieldCondition,
    Mentions,
    StageAge,
    LookupCondition,
    EmailSent,
    Changes,
    Changed,
    TodayBetween,
    ActivityCondition,
    ActivityPlanned,
    AllOf,
    AnyOf,
    Not,
]
for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()
