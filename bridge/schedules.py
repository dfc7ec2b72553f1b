"""When a sweep runs: ``every: monday 10:00``, ``every: 60 minutes``, ``every: "0 10 * * 1"``.

Three forms, all in the tenant's time zone:

- **days and a time**: ``monday 10:00``, ``mon, thu 09:30``, ``mon-fri 18:00``, ``day 10:00``.
  These follow the tenant's calendar: a run that falls on a day off (a weekend, a public
  holiday, one of the tenant's ``days_off``) moves to the next working day at the same time,
  and a day that already has its run gets no second one (``day 10:00`` is every working day).
- **an interval**: ``30 minutes``, ``2 hours``, ``1 day``: a run that long after the previous
  one, day or night.
- **a cron expression** of five fields (minute hour day-of-month month day-of-week), such as
  ``"0 10 * * 1"``: exactly when it says, in the tenant's zone, working day or not.

Pure: :meth:`Schedule.next_after` is given the time and the calendar, and reads no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from bridge.calendar import BusinessCalendar
from bridge.deadlines import DeadlineKind, Unit, parse_deadline

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ALL_DAYS = frozenset(range(7))
_WEEKLY = re.compile(r"(?:every\s+)?(?P<days>.+?)\s+(?:at\s+)?(?P<hh>\d{1,2}):(?P<mm>\d{2})")
_UNITS = {Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400}
FORMS = (
    "'monday 10:00'",
    "'mon, thu 09:30'",
    "'mon-fri 18:00'",
    "'day 10:00'",
    "'<N> minutes'",
    "'<N> hours'",
    "'<N> days'",
    "a cron expression such as '0 10 * * 1'",
)
_SEARCH_DAYS = 400


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule (build one with :func:`parse_schedule`); ``str()`` gives its text."""

    text: str
    days: frozenset[int] = frozenset()
    at: time | None = None
    every: timedelta | None = None
    cron: str | None = None

    def __str__(self) -> str:
        return self.text

    def next_after(self, moment: datetime, calendar: BusinessCalendar) -> datetime:
        """The first run strictly after ``moment`` (aware), in the calendar's zone."""
        if self.every is not None:
            return moment + self.every
        zone = ZoneInfo(calendar.timezone)
        local = moment.astimezone(zone)
        if self.cron is not None:
            found = croniter(self.cron, local.replace(tzinfo=None)).get_next(datetime)
            return _aware(found, zone)
        assert self.at is not None
        # from two weeks back: a run moved off a long holiday may still lie ahead
        for offset in range(-14, _SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            run = _aware(datetime.combine(_working_on_or_after(day, calendar), self.at), zone)
            if run > moment:
                return run
        raise ValueError(f"schedule {self.text!r}: no run within {_SEARCH_DAYS} days")

    def runs(self, after: datetime, until: datetime, calendar: BusinessCalendar) -> list[datetime]:
        """Every run in ``(after, until]`` (at most 1,000)."""
        out: list[datetime] = []
        moment = self.next_after(after, calendar)
        while moment <= until and len(out) < 1000:
            out.append(moment)
            moment = self.next_after(moment, calendar)
        return out

    def describe(self, timezone: str) -> str:
        """In words, for the docs and ``bridge try``: when it runs."""
        if self.every is not None:
            return f"every {self.text.strip()} after the previous run"
        if self.cron is not None:
            return f"at the times of the cron expression {self.cron!r}, {timezone} time"
        days = sorted(self.days)
        names = ", ".join(DAYS[d].title() for d in days)
        if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
            names = f"{DAYS[days[0]].title()} to {DAYS[days[-1]].title()}"
        which = "every day" if self.days == _ALL_DAYS else f"every {names}"
        return f"{which} at {self.at:%H:%M} {timezone} time; on a day off, the next working day"


def parse_schedule(text: str) -> Schedule:
    """Read a schedule (see the module's docstring for the forms).

    Raises:
        ValueError: not one of the forms; the message lists them.
    """
    norm = " ".join(str(text).lower().split()) if isinstance(text, str) else ""
    if len(norm.split()) == 5 and croniter.is_valid(norm):
        return Schedule(norm, cron=norm)
    try:
        deadline = parse_deadline(norm)
    except ValueError:
        deadline = None
    plain = deadline is not None and deadline.kind is DeadlineKind.CALENDAR and not deadline.then
    if plain and deadline.unit in _UNITS:
        return Schedule(norm, every=timedelta(seconds=deadline.amount * _UNITS[deadline.unit]))
    match = _WEEKLY.fullmatch(norm)
    if match:
        hh, mm = int(match["hh"]), int(match["mm"])
        days = _days(match["days"])
        if days and hh < 24 and mm < 60:
            return Schedule(norm, days=days, at=time(hh, mm))
    raise ValueError(f"cannot read schedule {text!r}; accepted forms: {', '.join(FORMS)}")


def _days(text: str) -> frozenset[int]:
    """``monday``, ``mon, thu``, ``mon-fri``, ``day`` (every day), ``working day``, ``weekday``."""
    text = text.strip().removesuffix("s")
    if text in ("day", "working day", "every day"):
        return _ALL_DAYS
    if text == "weekday":
        return frozenset(range(5))
    out: set[int] = set()
    for part in re.split(r"\s*,\s*|\s+and\s+", text):
        first, _, last = part.partition("-")
        a, b = _day(first), _day(last or first)
        if a is None or b is None or b < a:
            return frozenset()
        out.update(range(a, b + 1))
    return frozenset(out)


def _day(word: str) -> int | None:
    word = word.strip().removesuffix("s")
    found = [i for i, name in enumerate(DAYS) if len(word) >= 3 and name.startswith(word)]
    return found[0] if len(found) == 1 else None


def _working_on_or_after(day: date, calendar: BusinessCalendar) -> date:
    for offset in range(_SEARCH_DAYS):
        candidate = day + timedelta(days=offset)
        if calendar.is_working_day(candidate):
            return candidate
    raise ValueError(f"no working day within {_SEARCH_DAYS} days of {day}")


def _aware(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")).astimezone(zone)


def schedule_text(value: str | None) -> str | None:
    """Validator: the text is a schedule (the error lists the accepted forms)."""
    if value is not None:
        parse_schedule(value)
    return value
