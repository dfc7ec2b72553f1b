"""Conditions on what surrounds the record: the rule's look-ups, e-mails sent, the event's
activity, an activity planned ahead, the season."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from bridge.regulations.condition_base import ConditionBase, Count, ref_constants
from bridge.regulations.values import Ref, is_empty, resolve
from bridge.yamlfile import Strict

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope


class LookupCondition(ConditionBase):
    """How many records a rule's look-up found."""

    lookup: str
    count: Count = Field(default_factory=lambda: Count(gte=1))

    def holds(self, scope: Scope) -> bool:
        """Does the number of found records satisfy ``count``?"""
        return self.count.holds(len(scope.lookups.get(self.lookup, ())), scope)

    def possible(self, scope: Scope) -> bool:
        """Unknown before the look-up runs: it could."""
        return True

    def lookups(self) -> Iterator[str]:
        """The look-up it reads."""
        yield self.lookup

    def constants(self) -> Iterator[str]:
        """The constants its count names."""
        yield from self.count.constants()


class EmailSent(ConditionBase):
    """A template e-mail was sent to this record's client during the current stay."""

    email_sent: str

    def holds(self, scope: Scope) -> bool:
        """Was the template sent?"""
        return self.email_sent in scope.emails_sent


ActivityType = Literal["call", "email", "meeting", "task", "other"]
ActivityOutcome = Literal["answered", "no_answer", "busy", "call_back", "wrong_number", "other"]


class ActivityMatch(Strict):
    """The activity an ``activity.*`` event brings: its type, direction, completion, and the
    call's outcome where the CRM records one (amoCRM's ``call_status``)."""

    type: list[ActivityType] | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    completed: bool | None = None
    outcome: list[ActivityOutcome] | None = None

    _lists = field_validator("type", "outcome", mode="before")(
        lambda v: [v] if isinstance(v, str) else v
    )


class ActivityCondition(ConditionBase):
    """``{activity: {type: [call, meeting], completed: true}}``: what the event's activity is."""

    activity: ActivityMatch

    def holds(self, scope: Scope) -> bool:
        """Does the event's activity match every key given?"""
        if scope.activity is None:
            return False
        for key, wanted in self.activity.model_dump(exclude_none=True).items():
            got = scope.activity.get(key)
            if not (got in wanted if isinstance(wanted, list) else got == wanted):
                return False
        return True


class ActivityPlanned(ConditionBase):
    """``{activity_planned: true}``: the record has an open activity (a call, a meeting, a
    task) due after now: the next contact is scheduled in the CRM itself."""

    activity_planned: bool

    def holds(self, scope: Scope) -> bool:
        """Is an open activity ahead (or, with ``false``, none)?"""
        planned = scope.planned_at is not None and scope.planned_at > scope.now
        return planned == self.activity_planned


def _month_day(text: str) -> str:
    month, _, day = str(text).partition("-")
    if not (month.isdigit() and day.isdigit() and 1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        raise ValueError(f"{text!r} must be MM-DD, e.g. 12-31")
    return f"{int(month):02d}-{int(day):02d}"


class TodayBetween(ConditionBase):
    """Today (in the tenant's zone) lies in a yearly window: ``["11-15", "12-31"]`` (MM-DD),
    either end a constant of the tenant: ``[{constant: season_start}, "12-31"]``."""

    today_between: tuple[str | Ref, str | Ref]

    @field_validator("today_between")
    @classmethod
    def _dates(cls, value: tuple[str | Ref, str | Ref]) -> tuple[str | Ref, str | Ref]:
        for end in value:
            if isinstance(end, str):
                _month_day(end)
        return value

    def holds(self, scope: Scope) -> bool:
        """Is today within the window (a window may wrap over the New Year)?"""
        local = scope.now.astimezone(ZoneInfo(scope.calendar.timezone))
        today = f"{local.month:02d}-{local.day:02d}"
        ends = [resolve(end, scope) for end in self.today_between]
        if any(is_empty(end) for end in ends):
            return False  # a season the head of sales has not opened
        start, end = (_month_day(str(e)[-5:]) for e in ends)
        return start <= today <= end if start <= end else today >= start or today <= end

    def constants(self) -> Iterator[str]:
        """The constants its ends name."""
        yield from ref_constants(*self.today_between)
