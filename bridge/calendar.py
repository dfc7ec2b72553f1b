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

from calendar import monthrange
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
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

    def previous_working_day_at(self, dt: datetime, t: time | None = None) -> datetime:
        """Return time ``t`` on the last working day before ``dt``'s local date.

        Without ``t`` the clock time of ``dt`` is kept, clamped into that day's hours: "clarify
        a day before the term ends" falls on the working day before, never on a Sunday.

        Raises:
            ValueError: ``dt`` is naive.
        """
        local = self._local(dt)
        day = self._previous_working_date(local.date())
        if t is None:
            opening, closing = self._span(day)
            t = min(max(local.time(), opening), closing)
        return self._aware(datetime.combine(day, t))

    def add_calendar_months(self, dt: datetime, n: int) -> datetime:
        """Move ``n`` calendar months on (negative: back), keeping the wall-clock time; the
        day is clamped to the month's last ("1 month" after 31 January is 28/29 February).

        Raises:
            ValueError: ``dt`` is naive.
        """
        local = self._local(dt)
        index = local.year * 12 + local.month - 1 + n
        year, month = divmod(index, 12)
        last = monthrange(year, month + 1)[1]
        return self._aware(local.replace(year=year, month=month + 1, day=min(local.day, last)))

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

    def _previous_working_date(self, d: date) -> date:
        """Last working day strictly before ``d``."""
        for offset in range(1, _MAX_SCAN_DAYS + 1):
            candidate = d - timedelta(days=offset)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days before {d}")

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
