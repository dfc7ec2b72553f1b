"""Deadline expressions, the way regulations state time: "4 working hours", "next working
day at 12:00", "1 year", "7 days then previous working day at 10:00".

A :class:`Deadline` is parsed once from a pack's text and computed against a tenant's
:class:`~bridge.calendar.BusinessCalendar`; nothing here reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.calendar import BusinessCalendar


class DeadlineKind(StrEnum):
    """The shapes of deadline a regulation can state."""

    CALENDAR = "calendar"  # N minutes/hours/days/months/years of plain time
    WORKING = "working"  # N working minutes/hours/days
    NEXT_WORKING_DAY_AT = "next_working_day_at"
    NEXT_DAY_AT = "next_day_at"
    PREVIOUS_WORKING_DAY = "previous_working_day"  # at HH:MM, or at the same clock time
    END_OF_WORKING_DAY = "end_of_working_day"


class Unit(StrEnum):
    """Units of a duration deadline."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    MONTHS = "months"
    YEARS = "years"


ACCEPTED_FORMS = (
    "'<N> minutes'",
    "'<N> hours'",
    "'<N> days'",
    "'<N> months'",
    "'<N> years'",
    "'<N> working minutes'",
    "'<N> working hours'",
    "'<N> working days'",
    "'next working day at HH:MM'",
    "'next day at HH:MM'",
    "'previous working day' (or '... at HH:MM')",
    "'end of working day'",
    "'same day'",
    "and chains of them: '7 days then previous working day at 10:00'",
)

_DURATION = re.compile(
    r"(?:within )?(?P<n>\d+) (?P<working>working )?(?P<unit>minute|hour|day|month|year)s?"
)
_AT = re.compile(r"next (?P<working>working )?day at (?P<hh>\d{1,2}):(?P<mm>\d{2})")
_PREVIOUS = re.compile(r"previous working day(?: at (?P<hh>\d{1,2}):(?P<mm>\d{2}))?")
# "within the working day" is how regulations phrase it; all three mean closing time.
_END = re.compile(r"end of (?:the )?working day|same day|within the working day")
_MONTHS = {Unit.MONTHS: 1, Unit.YEARS: 12}


@dataclass(frozen=True)
class Deadline:
    """A parsed deadline expression; ``str()`` gives its canonical text back.

    Build one with :func:`parse_deadline`. ``amount`` and ``unit`` are set for the duration
    kinds, ``at`` for the ``next ... day at HH:MM`` kinds (and optionally the previous
    working day's). ``then`` is the rest of a chain, applied to this one's result.
    """

    kind: DeadlineKind
    amount: int = 0
    unit: Unit | None = None
    at: time | None = None
    then: Deadline | None = None

    def __post_init__(self) -> None:
        # Rules are built by the parser, but tests and code may build one directly; an
        # inconsistent Deadline would only fail later, inside the engine, so refuse it here.
        if self.kind in (DeadlineKind.CALENDAR, DeadlineKind.WORKING):
            if self.unit is None or self.amount < 1 or self.at is not None:
                raise ValueError(f"{self.kind} deadline needs amount >= 1 and a unit, no time")
            if self.kind is DeadlineKind.WORKING and self.unit in _MONTHS:
                raise ValueError(f"working {self.unit} are not a unit: use {self.unit} or days")
        elif self.kind in (DeadlineKind.END_OF_WORKING_DAY, DeadlineKind.PREVIOUS_WORKING_DAY):
            if self.unit is not None or self.amount:
                raise ValueError(f"{self.kind} deadline takes no amount or unit")
            if self.kind is DeadlineKind.END_OF_WORKING_DAY and self.at is not None:
                raise ValueError("end-of-working-day deadline takes no time")
        elif self.at is None or self.unit is not None or self.amount:
            raise ValueError(f"{self.kind} deadline needs a time and no amount or unit")

    def __str__(self) -> str:
        rest = f" then {self.then}" if self.then else ""
        return self._text() + rest

    def _text(self) -> str:
        if self.kind in (DeadlineKind.CALENDAR, DeadlineKind.WORKING):
            unit = str(self.unit)[:-1] if self.amount == 1 else str(self.unit)
            working = "working " if self.kind is DeadlineKind.WORKING else ""
            return f"{self.amount} {working}{unit}"
        if self.kind is DeadlineKind.END_OF_WORKING_DAY:
            return "end of working day"
        if self.kind is DeadlineKind.PREVIOUS_WORKING_DAY:
            return "previous working day" + (f" at {self.at:%H:%M}" if self.at else "")
        working = "working " if self.kind is DeadlineKind.NEXT_WORKING_DAY_AT else ""
        return f"next {working}day at {self.at:%H:%M}"

    def due(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """Return the moment this deadline falls due for an event at ``start``.

        Args:
            calendar: the tenant's calendar.
            start: when the triggering event happened (timezone-aware).

        Returns:
            An aware datetime in the calendar's zone.

        Raises:
            ValueError: ``start`` is naive.
        """
        result = self._due(calendar, start)
        return self.then.due(calendar, result) if self.then else result

    def before(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """The moment this long *before* ``start`` (a plain duration only: "1 month" back).

        Raises:
            ValueError: the expression is not a plain duration, or ``start`` is naive.
        """
        if self.kind is not DeadlineKind.CALENDAR or self.then is not None:
            raise ValueError(f"only a plain duration can be counted back, not {str(self)!r}")
        return self._calendar(calendar, start, -self.amount)

    def _due(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        if self.kind is DeadlineKind.END_OF_WORKING_DAY:
            return calendar.end_of_working_day(start)
        if self.kind is DeadlineKind.NEXT_WORKING_DAY_AT:
            return calendar.next_working_day_at(start, self._at())
        if self.kind is DeadlineKind.NEXT_DAY_AT:
            return calendar.next_day_at(start, self._at())
        if self.kind is DeadlineKind.PREVIOUS_WORKING_DAY:
            return calendar.previous_working_day_at(start, self.at)
        if self.kind is DeadlineKind.WORKING:
            if self.unit is Unit.DAYS:
                return calendar.add_working_days(start, self.amount)
            return calendar.add_working(start, timedelta(**{str(self.unit): self.amount}))
        return self._calendar(calendar, start, self.amount)

    def _calendar(self, calendar: BusinessCalendar, start: datetime, amount: int) -> datetime:
        if self.unit in _MONTHS:
            return calendar.add_calendar_months(start, amount * _MONTHS[self.unit])
        if self.unit is Unit.DAYS:
            return calendar.add_calendar_days(start, amount)
        return calendar.add_calendar(start, timedelta(**{str(self.unit): amount}))

    def _at(self) -> time:
        if self.at is None:
            raise AssertionError(f"{self.kind} deadline without a time")  # constructor misuse
        return self.at


def parse_deadline(text: str) -> Deadline:
    """Parse a deadline expression from a regulation, e.g. ``"4 working hours"``.

    Case and runs of spaces do not matter; durations may start with ``within``; expressions
    chain with ``then`` ("7 days then previous working day at 10:00"), each counted from the
    previous one's result.

    Args:
        text: the expression as written in the rules file.

    Returns:
        The parsed :class:`Deadline`.

    Raises:
        ValueError: the text is not one of the accepted forms; the message lists them.
    """
    norm = " ".join(str(text).lower().split()) if isinstance(text, str) else ""
    first, *rest = norm.split(" then ")
    deadline = _one(first, text)
    if rest:
        deadline = replace(deadline, then=parse_deadline(" then ".join(rest)))
    return deadline


def _one(norm: str, text: object) -> Deadline:
    if _END.fullmatch(norm):
        return Deadline(DeadlineKind.END_OF_WORKING_DAY)
    if match := _DURATION.fullmatch(norm):
        amount = int(match["n"])
        if amount < 1:
            raise _bad(text, "the amount must be at least 1")
        kind = DeadlineKind.WORKING if match["working"] else DeadlineKind.CALENDAR
        unit = Unit(match["unit"] + "s")
        if kind is DeadlineKind.WORKING and unit in _MONTHS:
            raise _bad(text, f"there are no working {unit}: write '{amount} {unit}'")
        return Deadline(kind, amount, unit)
    if match := _AT.fullmatch(norm):
        working = match["working"]
        kind = DeadlineKind.NEXT_WORKING_DAY_AT if working else DeadlineKind.NEXT_DAY_AT
        return Deadline(kind, at=_clock(match, text))
    if match := _PREVIOUS.fullmatch(norm):
        at = _clock(match, text) if match["hh"] else None
        return Deadline(DeadlineKind.PREVIOUS_WORKING_DAY, at=at)
    raise _bad(text)


def _clock(match: re.Match[str], text: object) -> time:
    hh, mm = int(match["hh"]), int(match["mm"])
    if hh > 23 or mm > 59:
        raise _bad(text, f"{match['hh']}:{match['mm']} is not a time of day")
    return time(hh, mm)


def _bad(text: object, reason: str = "") -> ValueError:
    if not reason and re.search("[а-яё]", str(text).lower()):
        reason = "written in English: «5 рабочих дней» is '5 working days'"
    why = f" ({reason})" if reason else ""
    return ValueError(
        f"cannot read deadline {text!r}{why}; accepted forms: {', '.join(ACCEPTED_FORMS)}"
    )
