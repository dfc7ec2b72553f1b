"""A tenant's business calendar and the deadline expressions regulations are written in.

The regulations engine is pure: it is handed a :class:`BusinessCalendar` and "now", and never
reads the clock itself. Everything here is deterministic for a given calendar and input: no
function in this module reads the current time.

Working hours are wall-clock hours in the tenant's zone: "09:00-18:00" stays 09:00-18:00 local
on both sides of a DST switch. Internally the arithmetic runs on naive *local* datetimes and
every result is re-attached to the zone on the way out.

Public holidays and the government's transferred working days come from the ``holidays``
library (``holidays.country_holidays(...)``: its holiday dates plus ``weekend_workdays``, the
Saturdays/Sundays moved to be working days, e.g. 2024-04-27 and 2025-11-01 in Russia). No date
list is kept by hand here. Russia's one-hour-shorter pre-holiday days are not modelled: the
library does not provide them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Hours = tuple[time, time]

_NINE_TO_SIX: Hours = (time(9, 0), time(18, 0))
DEFAULT_HOURS: Mapping[int, Hours] = {weekday: _NINE_TO_SIX for weekday in range(5)}

# A guard against a calendar with no working day in sight (e.g. a tenant that marked a whole
# year off); a bounded scan fails loudly instead of spinning forever.
_MAX_SCAN_DAYS = 1000


class _YearDays(NamedTuple):
    """The library's verdict for one year: public days off and weekend days turned working."""

    days_off: frozenset[date]
    workdays: frozenset[date]


class BusinessCalendar:
    """Working days and hours of one tenant, in its own time zone.

    A date is a working day when, in this order of precedence: it is one of the tenant's
    ``extra_days_off`` (no); one of its ``extra_working_days`` (yes); a transferred working day
    of the country (yes); a public holiday (no); otherwise a weekday listed in ``hours``.

    Working hours of a day are its weekday's entry in ``hours``. A working day whose weekday has
    no entry (a transferred Saturday, a tenant's extra working Sunday) uses
    ``transferred_day_hours``, by default Monday's hours (or the first listed weekday's).

    All intervals are half-open: a 09:00-18:00 day is working at 09:00 and not at 18:00.
    The calendar is built once per tenant and used for years; holiday data is loaded lazily,
    one year at a time, and memoised on the instance (a cache, not observable state).
    """

    def __init__(
        self,
        timezone: str = "Europe/Moscow",
        hours: Mapping[int, Hours] | None = None,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        country: str | None = "RU",
        transferred_day_hours: Hours | None = None,
    ) -> None:
        """Build a calendar.

        Args:
            timezone: IANA zone name of the tenant, e.g. ``"Europe/Moscow"``.
            hours: weekday (0 = Monday) to ``(opening, closing)``; default Mon-Fri 09:00-18:00.
            extra_days_off: tenant's own days off (corporate holidays), beat everything else.
            extra_working_days: tenant's own extra working days.
            country: ``holidays`` country code for public holidays; ``None`` for none.
            transferred_day_hours: hours of a working day whose weekday is not in ``hours``.

        Raises:
            ValueError: unknown zone or country, or malformed hours.
        """
        self.timezone = timezone
        self._tz = _zone(timezone)
        self._hours = _check_hours(DEFAULT_HOURS if hours is None else hours)
        self._transferred_hours = _check_span(
            transferred_day_hours or self._hours.get(0) or self._hours[min(self._hours)],
            "transferred_day_hours",
        )
        self._extra_off = frozenset(extra_days_off)
        self._extra_work = frozenset(extra_working_days)
        both = self._extra_off & self._extra_work
        if both:
            raise ValueError(f"dates both extra days off and extra working days: {sorted(both)}")
        self.country = country
        self._check_country()
        self._years: dict[int, _YearDays] = {}

    def __repr__(self) -> str:
        return f"BusinessCalendar(timezone={self.timezone!r}, country={self.country!r})"

    # --- days and hours -------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """Tell whether ``d`` is a working day for this tenant (see the class docstring)."""
        if d in self._extra_off:
            return False
        if d in self._extra_work:
            return True
        year = self._year(d.year)
        if d in year.workdays:
            return True
        return d not in year.days_off and d.weekday() in self._hours

    def hours_on(self, d: date) -> Hours | None:
        """Return ``(opening, closing)`` of ``d``, or ``None`` when it is not a working day."""
        if not self.is_working_day(d):
            return None
        return self._hours.get(d.weekday(), self._transferred_hours)

    def is_working_time(self, dt: datetime) -> bool:
        """Tell whether the aware datetime ``dt`` falls inside working hours.

        Raises:
            ValueError: ``dt`` is naive.
        """
        local = self._local(dt)
        span = self.hours_on(local.date())
        return span is not None and span[0] <= local.time() < span[1]

    # --- arithmetic -----------------------------------------------------------------------

    def add_calendar(self, dt: datetime, delta: timedelta) -> datetime:
        """Add elapsed (physical) time, ignoring working hours: "within 20 hours".

        Elapsed, not wall-clock: 20 hours across a DST switch are still 20 real hours.

        Raises:
            ValueError: ``dt`` is naive.
        """
        self._local(dt)  # validates awareness
        return (dt.astimezone(UTC) + delta).astimezone(self._tz)

    def add_calendar_days(self, dt: datetime, n: int) -> datetime:
        """Move ``n`` calendar dates on, keeping the wall-clock time: "within 7 days".

        Raises:
            ValueError: ``dt`` is naive.
        """
        return self._aware(self._local(dt) + timedelta(days=n))

    def add_working(self, dt: datetime, delta: timedelta) -> datetime:
        """Add working time: only minutes inside working hours count.

        A start outside working hours begins at the next opening. A deadline landing exactly on
        closing time stays on that day (17:00 + 1 working hour = 18:00, not 09:00 tomorrow).

        Raises:
            ValueError: ``dt`` is naive or ``delta`` is negative.
        """
        if delta < timedelta(0):
            raise ValueError(f"working time to add must not be negative, got {delta}")
        cur, left = self._next_open(self._local(dt)), delta
        while True:
            close = datetime.combine(cur.date(), self._span(cur.date())[1])
            if left <= close - cur:
                return self._aware(cur + left)
            left -= close - cur
            cur = self._opening(self._next_working_date(cur.date()))

    def add_working_days(self, dt: datetime, n: int) -> datetime:
        """Move ``n`` working days on, keeping the clock time: "within 3 working days".

        Rule: the start is first moved into working time (a start outside hours becomes the
        next opening, as in :meth:`add_working`); then the date steps ``n`` working days
        forward and the clock time is kept, clamped into that day's hours (when days differ in
        hours). So Mon 14:00 + 1 = Tue 14:00, Fri 20:00 + 1 = Tue 09:00, Sat + 0 = Mon 09:00.

        Raises:
            ValueError: ``dt`` is naive or ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"working days to add must not be negative, got {n}")
        start = self._next_open(self._local(dt))
        day = start.date()
        for _ in range(n):
            day = self._next_working_date(day)
        opening, closing = self._span(day)
        clock = min(max(start.time(), opening), closing)
        return self._aware(datetime.combine(day, clock))

    def next_working_day_at(self, dt: datetime, t: time) -> datetime:
        """Return time ``t`` on the first working day after ``dt``'s local date.

        ``t`` is taken as written, not clamped into the day's hours: the regulation chose it.

        Raises:
            ValueError: ``dt`` is naive.
        """
        day = self._next_working_date(self._local(dt).date())
        return self._aware(datetime.combine(day, t))

    def next_day_at(self, dt: datetime, t: time) -> datetime:
        """Return time ``t`` on the calendar day after ``dt``'s local date, working or not.

        Raises:
            ValueError: ``dt`` is naive.
        """
        day = self._local(dt).date() + timedelta(days=1)
        return self._aware(datetime.combine(day, t))

    def end_of_working_day(self, dt: datetime) -> datetime:
        """Return the closing time of the current working day.

        When ``dt`` is at or after closing, or on a day off, that is the closing time of the
        next working day. Before opening on a working day it is that same day's closing.

        Raises:
            ValueError: ``dt`` is naive.
        """
        local = self._local(dt)
        span = self.hours_on(local.date())
        day = local.date()
        if span is None or local.time() >= span[1]:
            day = self._next_working_date(day)
        return self._aware(datetime.combine(day, self._span(day)[1]))

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Return the working time between ``a`` and ``b``; negative when ``b`` is before ``a``.

        Raises:
            ValueError: either datetime is naive.
        """
        start, end = self._local(a), self._local(b)
        if end < start:
            return -self.working_time_between(b, a)
        total = timedelta(0)
        day = start.date()
        while day <= end.date():
            span = self.hours_on(day)
            if span is not None:
                lo = max(start, datetime.combine(day, span[0]))
                hi = min(end, datetime.combine(day, span[1]))
                total += max(hi - lo, timedelta(0))
            day += timedelta(days=1)
        return total

    # --- internals ------------------------------------------------------------------------

    def _local(self, dt: datetime) -> datetime:
        """Naive wall-clock time of ``dt`` in the tenant's zone; naive input is refused."""
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(
                f"naive datetime {dt.isoformat()} refused: the calendar needs a timezone-aware "
                "datetime (a naive one is ambiguous across tenants' zones)"
            )
        return dt.astimezone(self._tz).replace(tzinfo=None)

    def _aware(self, local: datetime) -> datetime:
        """Attach the tenant's zone to a wall-clock time.

        The UTC round trip normalises a time that does not exist (inside a spring-forward gap)
        to the real instant, so results always compare and print correctly.
        """
        return local.replace(tzinfo=self._tz).astimezone(UTC).astimezone(self._tz)

    def _span(self, d: date) -> Hours:
        """Hours of a date already known to be a working day."""
        span = self.hours_on(d)
        if span is None:
            raise AssertionError(f"{d} is not a working day")  # a bug here, not bad input
        return span

    def _opening(self, d: date) -> datetime:
        return datetime.combine(d, self._span(d)[0])

    def _next_working_date(self, d: date) -> date:
        """First working day strictly after ``d``."""
        for offset in range(1, _MAX_SCAN_DAYS + 1):
            candidate = d + timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {d}")

    def _next_open(self, local: datetime) -> datetime:
        """``local`` itself if inside working hours, else the next opening time."""
        span = self.hours_on(local.date())
        if span is not None and local.time() < span[1]:
            return max(local, datetime.combine(local.date(), span[0]))
        return self._opening(self._next_working_date(local.date()))

    def _year(self, year: int) -> _YearDays:
        """Public days off and transferred working days of ``year``, loaded once."""
        cached = self._years.get(year)
        if cached is None:
            cached = self._years[year] = self._load_year(year)
        return cached

    def _load_year(self, year: int) -> _YearDays:
        if self.country is None:
            return _YearDays(frozenset(), frozenset())
        # Neighbouring years are loaded too: a transfer decree of one year may move a weekend
        # day of another (the library then records it while populating the decree's year).
        lib = holidays.country_holidays(self.country, years=range(year - 1, year + 2))
        return _YearDays(
            days_off=frozenset(d for d in lib if d.year == year),
            workdays=frozenset(d for d in lib.weekend_workdays if d.year == year),
        )

    def _check_country(self) -> None:
        if self.country is None:
            return
        try:
            holidays.country_holidays(self.country)  # empty until queried: cheap
        except NotImplementedError as exc:
            raise ValueError(f"country {self.country!r} is not known to `holidays`") from exc


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _check_hours(hours: Mapping[int, Hours]) -> dict[int, Hours]:
    if not hours:
        raise ValueError("hours must list at least one working weekday")
    for weekday, span in hours.items():
        if weekday not in range(7):
            raise ValueError(f"hours: weekday must be 0 (Monday) to 6 (Sunday), got {weekday!r}")
        _check_span(span, f"hours[{weekday}]")
    return dict(hours)


def _check_span(span: Hours, where: str) -> Hours:
    opening, closing = span
    if not (isinstance(opening, time) and isinstance(closing, time)):
        raise ValueError(f"{where}: opening and closing must be datetime.time values")
    if opening.tzinfo is not None or closing.tzinfo is not None:
        raise ValueError(f"{where}: times are wall-clock in the calendar's zone, drop tzinfo")
    if not opening < closing:
        raise ValueError(f"{where}: opening {opening} must be before closing {closing}")
    return (opening, closing)


# === deadline expressions ===================================================================


class DeadlineKind(StrEnum):
    """The shapes of deadline a regulation can state."""

    CALENDAR = "calendar"  # N minutes/hours/days of plain time
    WORKING = "working"  # N working minutes/hours/days
    NEXT_WORKING_DAY_AT = "next_working_day_at"
    NEXT_DAY_AT = "next_day_at"
    END_OF_WORKING_DAY = "end_of_working_day"


class Unit(StrEnum):
    """Units of a duration deadline."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"


ACCEPTED_FORMS = (
    "'<N> minutes'",
    "'<N> hours'",
    "'<N> days'",
    "'<N> working minutes'",
    "'<N> working hours'",
    "'<N> working days'",
    "'next working day at HH:MM'",
    "'next day at HH:MM'",
    "'end of working day'",
    "'same day'",
)

_DURATION = re.compile(r"(?:within )?(?P<n>\d+) (?P<working>working )?(?P<unit>minute|hour|day)s?")
_AT = re.compile(r"next (?P<working>working )?day at (?P<hh>\d{1,2}):(?P<mm>\d{2})")
# "within the working day" is how regulations phrase it; all three mean closing time.
_END = re.compile(r"end of (?:the )?working day|same day|within the working day")


@dataclass(frozen=True)
class Deadline:
    """A parsed deadline expression; ``str()`` gives its canonical text back.

    Build one with :func:`parse_deadline`. ``amount`` and ``unit`` are set for the duration
    kinds, ``at`` for the ``next ... day at HH:MM`` kinds.
    """

    kind: DeadlineKind
    amount: int = 0
    unit: Unit | None = None
    at: time | None = None

    def __post_init__(self) -> None:
        # Rules are built by the parser, but tests and code may build one directly; an
        # inconsistent Deadline would only fail later, inside the engine, so refuse it here.
        if self.kind in (DeadlineKind.CALENDAR, DeadlineKind.WORKING):
            if self.unit is None or self.amount < 1 or self.at is not None:
                raise ValueError(f"{self.kind} deadline needs amount >= 1 and a unit, no time")
        elif self.kind is DeadlineKind.END_OF_WORKING_DAY:
            if self.unit is not None or self.amount or self.at is not None:
                raise ValueError("end-of-working-day deadline takes no amount, unit or time")
        elif self.at is None or self.unit is not None or self.amount:
            raise ValueError(f"{self.kind} deadline needs a time and no amount or unit")

    def __str__(self) -> str:
        if self.kind in (DeadlineKind.CALENDAR, DeadlineKind.WORKING):
            unit = str(self.unit)[:-1] if self.amount == 1 else str(self.unit)
            working = "working " if self.kind is DeadlineKind.WORKING else ""
            return f"{self.amount} {working}{unit}"
        if self.kind is DeadlineKind.END_OF_WORKING_DAY:
            return "end of working day"
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
        if self.kind is DeadlineKind.END_OF_WORKING_DAY:
            return calendar.end_of_working_day(start)
        if self.kind is DeadlineKind.NEXT_WORKING_DAY_AT:
            return calendar.next_working_day_at(start, self._at())
        if self.kind is DeadlineKind.NEXT_DAY_AT:
            return calendar.next_day_at(start, self._at())
        if self.unit is Unit.DAYS:
            if self.kind is DeadlineKind.WORKING:
                return calendar.add_working_days(start, self.amount)
            return calendar.add_calendar_days(start, self.amount)
        delta = timedelta(**{str(self.unit): self.amount})
        if self.kind is DeadlineKind.WORKING:
            return calendar.add_working(start, delta)
        return calendar.add_calendar(start, delta)

    def _at(self) -> time:
        if self.at is None:
            raise AssertionError(f"{self.kind} deadline without a time")  # constructor misuse
        return self.at


def parse_deadline(text: str) -> Deadline:
    """Parse a deadline expression from a regulation, e.g. ``"4 working hours"``.

    Case and runs of spaces do not matter; durations may start with ``within``.

    Args:
        text: the expression as written in the rules file.

    Returns:
        The parsed :class:`Deadline`.

    Raises:
        ValueError: the text is not one of the accepted forms; the message lists them.
    """
    norm = " ".join(str(text).lower().split()) if isinstance(text, str) else ""
    if _END.fullmatch(norm):
        return Deadline(DeadlineKind.END_OF_WORKING_DAY)
    if match := _DURATION.fullmatch(norm):
        amount = int(match["n"])
        if amount < 1:
            raise _bad(text, "the amount must be at least 1")
        kind = DeadlineKind.WORKING if match["working"] else DeadlineKind.CALENDAR
        return Deadline(kind, amount, Unit(match["unit"] + "s"))
    if match := _AT.fullmatch(norm):
        hh, mm = int(match["hh"]), int(match["mm"])
        if hh > 23 or mm > 59:
            raise _bad(text, f"{match['hh']}:{match['mm']} is not a time of day")
        working = match["working"]
        kind = DeadlineKind.NEXT_WORKING_DAY_AT if working else DeadlineKind.NEXT_DAY_AT
        return Deadline(kind, at=time(hh, mm))
    raise _bad(text)


def _bad(text: object, reason: str = "") -> ValueError:
    if not reason and re.search("[а-яё]", str(text).lower()):
        reason = "written in English: «5 рабочих дней» is '5 working days'"
    why = f" ({reason})" if reason else ""
    return ValueError(
        f"cannot read deadline {text!r}{why}; accepted forms: {', '.join(ACCEPTED_FORMS)}"
    )


def as_datetime(value: Any, zone: str) -> datetime | None:
    """A field's value as an aware datetime; a bare date or time counts in the tenant's zone."""
    if isinstance(value, datetime):
        parsed = value
    elif not value:
        return None
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))
