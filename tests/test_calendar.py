"""Business calendar: working-time arithmetic, Russian holidays and transfers, deadline parser.

Holiday facts used below are those the installed ``holidays`` library states for Russia
(checked in ``test_library_facts_the_cases_rely_on``): 2025-01-01..08 and 2025-05-01..04 off,
2024-12-28 and 2025-11-01 are working Saturdays, 2025-11-03 and 11-04 are off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from bridge.calendar import BusinessCalendar
from bridge.deadlines import Deadline, DeadlineKind, Unit, parse_deadline

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def ber(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def cal() -> BusinessCalendar:
    return BusinessCalendar()


def test_library_facts_the_cases_rely_on() -> None:
    ru = holidays.RU(years=[2024, 2025])
    assert {date(2024, 12, 28), date(2025, 11, 1)} <= ru.weekend_workdays
    for day in (1, 2, 3, 4, 5, 6, 7, 8):
        assert date(2025, 1, day) in ru
    assert {date(2025, 5, 1), date(2025, 5, 2), date(2025, 11, 3), date(2025, 11, 4)} <= set(ru)


# --- working days ---------------------------------------------------------------------------


def test_working_days_follow_russian_calendar(cal: BusinessCalendar) -> None:
    assert cal.is_working_day(date(2025, 10, 17))  # ordinary Friday
    assert not cal.is_working_day(date(2025, 10, 18))  # ordinary Saturday
    assert not cal.is_working_day(date(2025, 1, 8))  # New Year holidays
    assert cal.is_working_day(date(2025, 1, 9))
    assert not cal.is_working_day(date(2025, 5, 2))  # Friday, day off moved from Jan 4
    assert cal.is_working_day(date(2025, 11, 1))  # Saturday made a working day
    assert not cal.is_working_day(date(2025, 11, 3))  # Monday, day off moved from Nov 1
    assert cal.is_working_day(date(2024, 4, 27))  # older year, loaded lazily


def test_is_working_time_half_open(cal: BusinessCalendar) -> None:
    assert not cal.is_working_time(msk(2025, 10, 20, 8, 59))
    assert cal.is_working_time(msk(2025, 10, 20, 9, 0))
    assert cal.is_working_time(msk(2025, 10, 20, 17, 59))
    assert not cal.is_working_time(msk(2025, 10, 20, 18, 0))
    assert not cal.is_working_time(msk(2025, 10, 18, 12, 0))  # Saturday
    assert cal.is_working_time(msk(2025, 11, 1, 12, 0))  # working Saturday


# --- add_working ----------------------------------------------------------------------------


def test_working_hours_across_weekend(cal: BusinessCalendar) -> None:
    # Fri 16:00-18:00 is 2 h, the other 2 h run Mon 09:00-11:00.
    assert cal.add_working(msk(2025, 10, 17, 16, 0), timedelta(hours=4)) == msk(2025, 10, 20, 11)


def test_deadline_on_closing_time_stays_that_day(cal: BusinessCalendar) -> None:
    assert cal.add_working(msk(2025, 10, 20, 14, 0), timedelta(hours=4)) == msk(2025, 10, 20, 18)


def test_working_hours_across_new_year_holidays(cal: BusinessCalendar) -> None:
    # Sat 2024-12-28 works; Dec 29 - Jan 8 is off; Thursday Jan 9 is the next working day.
    start = msk(2024, 12, 27, 17, 0)
    assert cal.add_working(start, timedelta(hours=2)) == msk(2024, 12, 28, 10, 0)
    start = msk(2024, 12, 28, 17, 0)
    assert cal.add_working(start, timedelta(hours=2)) == msk(2025, 1, 9, 10, 0)


def test_working_hours_across_may_holidays(cal: BusinessCalendar) -> None:
    start = msk(2025, 4, 30, 17, 30)
    assert cal.add_working(start, timedelta(minutes=90)) == msk(2025, 5, 5, 10, 0)


def test_working_hours_across_transferred_working_saturday(cal: BusinessCalendar) -> None:
    start = msk(2025, 10, 31, 17, 0)  # Friday
    assert cal.add_working(start, timedelta(hours=2)) == msk(2025, 11, 1, 10, 0)  # Saturday
    start = msk(2025, 11, 1, 17, 0)  # Nov 2-4 off
    assert cal.add_working(start, timedelta(hours=2)) == msk(2025, 11, 5, 10, 0)


def test_transferred_day_uses_monday_hours_or_configured() -> None:
    hours = {wd: (time(10), time(19)) for wd in range(5)}
    hours[4] = (time(10), time(17))  # short Friday must not leak onto the Saturday
    cal = BusinessCalendar(hours=hours)
    assert cal.hours_on(date(2025, 11, 1)) == (time(10), time(19))
    cal = BusinessCalendar(transferred_day_hours=(time(10), time(15)))
    assert cal.hours_on(date(2025, 11, 1)) == (time(10), time(15))
    assert cal.add_working(msk(2025, 11, 1, 14), timedelta(hours=2)) == msk(2025, 11, 5, 10)


def test_tenant_extra_day_off_and_extra_working_day() -> None:
    start = msk(2025, 10, 17, 16, 0)  # Friday
    off = BusinessCalendar(extra_days_off=[date(2025, 10, 20)])
    assert off.add_working(start, timedelta(hours=4)) == msk(2025, 10, 21, 11, 0)
    sunday = BusinessCalendar(extra_working_days=[date(2025, 10, 19)])
    assert sunday.add_working(start, timedelta(hours=4)) == msk(2025, 10, 19, 11, 0)
    # A tenant's day off beats a government transferred working day.
    assert not BusinessCalendar(extra_days_off=[date(2025, 11, 1)]).is_working_day(
        date(2025, 11, 1)
    )


def test_start_outside_working_hours_begins_at_next_opening(cal: BusinessCalendar) -> None:
    assert cal.add_working(msk(2025, 10, 20, 7, 30), timedelta(minutes=30)) == msk(
        2025, 10, 20, 9, 30
    )
    assert cal.add_working(msk(2025, 10, 20, 18, 0), timedelta(hours=1)) == msk(2025, 10, 21, 10)
    assert cal.add_working(msk(2025, 10, 18, 12, 0), timedelta(hours=1)) == msk(2025, 10, 20, 10)


def test_add_working_rejects_negative(cal: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        cal.add_working(msk(2025, 10, 20, 10), timedelta(minutes=-1))


# --- working days, named times --------------------------------------------------------------


def test_add_working_days(cal: BusinessCalendar) -> None:
    assert cal.add_working_days(msk(2025, 10, 20, 14, 0), 1) == msk(2025, 10, 21, 14, 0)
    assert cal.add_working_days(msk(2025, 10, 17, 14, 0), 1) == msk(2025, 10, 20, 14, 0)
    # Friday evening: the clock starts Monday 09:00, one working day later is Tuesday 09:00.
    assert cal.add_working_days(msk(2025, 10, 17, 20, 0), 1) == msk(2025, 10, 21, 9, 0)
    assert cal.add_working_days(msk(2025, 10, 18, 12, 0), 0) == msk(2025, 10, 20, 9, 0)
    assert cal.add_working_days(msk(2025, 4, 30, 15, 0), 3) == msk(2025, 5, 7, 15, 0)


def test_add_working_days_clamps_into_shorter_day() -> None:
    hours = {wd: (time(9), time(18)) for wd in range(4)} | {4: (time(9), time(16, 45))}
    cal = BusinessCalendar(hours=hours)
    assert cal.add_working_days(msk(2025, 10, 16, 17, 30), 1) == msk(2025, 10, 17, 16, 45)


def test_next_working_day_at_noon_from_friday_evening(cal: BusinessCalendar) -> None:
    assert cal.next_working_day_at(msk(2025, 10, 17, 19, 0), time(12)) == msk(2025, 10, 20, 12)
    # The Friday before the November holidays: the next working day is that Saturday.
    assert cal.next_working_day_at(msk(2025, 10, 31, 19, 0), time(12)) == msk(2025, 11, 1, 12)


def test_next_day_at_is_calendar_day(cal: BusinessCalendar) -> None:
    assert cal.next_day_at(msk(2025, 10, 17, 19, 0), time(10)) == msk(2025, 10, 18, 10, 0)


def test_end_of_working_day(cal: BusinessCalendar) -> None:
    assert cal.end_of_working_day(msk(2025, 10, 20, 10, 0)) == msk(2025, 10, 20, 18, 0)
    assert cal.end_of_working_day(msk(2025, 10, 20, 7, 0)) == msk(2025, 10, 20, 18, 0)
    assert cal.end_of_working_day(msk(2025, 10, 20, 18, 30)) == msk(2025, 10, 21, 18, 0)
    assert cal.end_of_working_day(msk(2025, 10, 20, 18, 0)) == msk(2025, 10, 21, 18, 0)
    assert cal.end_of_working_day(msk(2025, 10, 17, 18, 30)) == msk(2025, 10, 20, 18, 0)
    assert cal.end_of_working_day(msk(2025, 11, 2, 12, 0)) == msk(2025, 11, 5, 18, 0)


def test_working_time_between(cal: BusinessCalendar) -> None:
    a, b = msk(2025, 10, 17, 16, 0), msk(2025, 10, 20, 11, 0)
    assert cal.working_time_between(a, b) == timedelta(hours=4)
    assert cal.working_time_between(b, a) == -timedelta(hours=4)
    # Oct 31 16:00 -> Nov 5 10:00: 2 h Friday + 9 h working Saturday + 1 h Wednesday.
    between = cal.working_time_between(msk(2025, 10, 31, 16), msk(2025, 11, 5, 10))
    assert between == timedelta(hours=12)


def test_add_calendar_is_plain_time(cal: BusinessCalendar) -> None:
    start = msk(2025, 10, 17, 19, 0)
    assert cal.add_calendar(start, timedelta(hours=20)) == msk(2025, 10, 18, 15, 0)
    assert cal.add_calendar_days(start, 7) == msk(2025, 10, 24, 19, 0)


# --- time zones -----------------------------------------------------------------------------


def test_moscow_results_are_aware_in_tenant_zone(cal: BusinessCalendar) -> None:
    start = datetime(2025, 10, 17, 13, 0, tzinfo=UTC)  # 16:00 in Moscow, UTC+3 all year
    due = cal.add_working(start, timedelta(hours=4))
    assert due == datetime(2025, 10, 20, 8, 0, tzinfo=UTC)
    assert due.tzinfo == MSK
    assert (due.hour, due.utcoffset()) == (11, timedelta(hours=3))
    # Moscow has no DST: the offset is the same in winter and summer.
    assert msk(2025, 1, 15, 12).utcoffset() == msk(2025, 7, 15, 12).utcoffset()


def test_berlin_wall_clock_hours_hold_across_dst() -> None:
    cal = BusinessCalendar(timezone="Europe/Berlin", country="DE")
    start = ber(2025, 3, 28, 16, 0)  # Friday, CET (+01); DST starts Sunday Mar 30
    due = cal.add_working(start, timedelta(hours=4))
    assert due == ber(2025, 3, 31, 11, 0)
    assert (due.hour, due.utcoffset()) == (11, timedelta(hours=2))
    assert cal.working_time_between(ber(2025, 3, 28, 9), ber(2025, 3, 31, 18)) == timedelta(
        hours=18
    )


def test_berlin_calendar_hours_are_elapsed_days_keep_clock() -> None:
    cal = BusinessCalendar(timezone="Europe/Berlin", country="DE")
    # 20 real hours across the spring-forward night: 11:00 UTC + 20 h = 07:00 UTC = 09:00 CEST.
    assert cal.add_calendar(ber(2025, 3, 29, 12), timedelta(hours=20)) == ber(2025, 3, 30, 9)
    assert cal.add_calendar_days(ber(2025, 3, 28, 10), 7) == ber(2025, 4, 4, 10)
    assert ber(2025, 4, 4, 10).utcoffset() == timedelta(hours=2)


def test_naive_datetime_rejected(cal: BusinessCalendar) -> None:
    naive = datetime(2025, 10, 20, 10, 0)
    calls = [
        lambda: cal.is_working_time(naive),
        lambda: cal.add_working(naive, timedelta(hours=1)),
        lambda: cal.add_working_days(naive, 1),
        lambda: cal.next_working_day_at(naive, time(12)),
        lambda: cal.end_of_working_day(naive),
        lambda: cal.add_calendar(naive, timedelta(hours=1)),
        lambda: cal.working_time_between(naive, msk(2025, 10, 21)),
        lambda: parse_deadline("1 hour").due(cal, naive),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="naive"):
            call()


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="country"):
        BusinessCalendar(country="XX")
    with pytest.raises(ValueError, match="before closing"):
        BusinessCalendar(hours={0: (time(18), time(9))})
    with pytest.raises(ValueError, match="weekday"):
        BusinessCalendar(hours={7: (time(9), time(18))})
    with pytest.raises(ValueError, match="both"):
        BusinessCalendar(extra_days_off=[date(2025, 1, 9)], extra_working_days=[date(2025, 1, 9)])


def test_no_country_means_no_public_holidays() -> None:
    assert BusinessCalendar(country=None).is_working_day(date(2025, 1, 2))


# --- deadline parser ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10 minutes", "10 minutes"),
        ("1 hour", "1 hour"),
        ("20 hours", "20 hours"),
        ("7 days", "7 days"),
        ("4 working hours", "4 working hours"),
        ("30 working minutes", "30 working minutes"),
        ("3 working days", "3 working days"),
        ("1 working day", "1 working day"),
        ("next working day at 12:00", "next working day at 12:00"),
        ("next day at 10:00", "next day at 10:00"),
        ("next day at 9:05", "next day at 09:05"),
        ("end of working day", "end of working day"),
        ("same day", "end of working day"),
        ("within the working day", "end of working day"),
        ("  Within   4  WORKING Hours ", "4 working hours"),
        ("End Of The Working Day", "end of working day"),
    ],
)
def test_parse_deadline_accepts(text: str, canonical: str) -> None:
    deadline = parse_deadline(text)
    assert str(deadline) == canonical
    assert parse_deadline(str(deadline)) == deadline


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "4 business hours", "4 workinghours", "0 hours", "-1 hours", "1.5 hours",
     "next day at 25:00", "next day at 10:60", "next working day", "4 working weeks", "same",
     "within end of working day"],
)  # fmt: skip
def test_parse_deadline_rejects_with_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_deadline(text)
    assert "accepted forms" in str(err.value)
    assert "'next working day at HH:MM'" in str(err.value)


def test_parse_deadline_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="accepted forms"):
        parse_deadline(4)  # type: ignore[arg-type]  # YAML may hand over an int


def test_deadline_structure_and_hashing() -> None:
    assert parse_deadline("4 working hours") == Deadline(DeadlineKind.WORKING, 4, Unit.HOURS)
    assert parse_deadline("next day at 10:00") == Deadline(DeadlineKind.NEXT_DAY_AT, at=time(10))
    assert len({parse_deadline("same day"), parse_deadline("end of working day")}) == 1
    with pytest.raises(AttributeError):
        parse_deadline("1 hour").amount = 2  # type: ignore[misc]
    with pytest.raises(ValueError):
        Deadline(DeadlineKind.WORKING, 0, Unit.HOURS)
    with pytest.raises(ValueError):
        Deadline(DeadlineKind.NEXT_DAY_AT)


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("10 minutes", msk(2025, 10, 31, 19, 10)),
        ("20 hours", msk(2025, 11, 1, 15, 0)),
        ("7 days", msk(2025, 11, 7, 19, 0)),
        ("10 working hours", msk(2025, 11, 5, 10, 0)),  # 9 h on Saturday Nov 1, then Wed
        ("30 working minutes", msk(2025, 11, 1, 9, 30)),
        ("3 working days", msk(2025, 11, 7, 9, 0)),  # Sat 1 -> Wed 5, Thu 6, Fri 7
        ("next working day at 12:00", msk(2025, 11, 1, 12, 0)),
        ("next day at 10:00", msk(2025, 11, 1, 10, 0)),
        ("end of working day", msk(2025, 11, 1, 18, 0)),
        ("same day", msk(2025, 11, 1, 18, 0)),
    ],
)
def test_deadline_due_friday_evening_before_november_holidays(
    cal: BusinessCalendar, text: str, due: datetime
) -> None:
    assert parse_deadline(text).due(cal, msk(2025, 10, 31, 19, 0)) == due


# --- months, years, the previous working day, chains (issue 11) ------------------------------


def test_months_keep_the_clock_and_clamp_the_day() -> None:
    cal = BusinessCalendar("Europe/Moscow")
    assert parse_deadline("1 month").due(cal, msk(2025, 1, 31, 10)) == msk(2025, 2, 28, 10)
    assert parse_deadline("2 years").due(cal, msk(2024, 2, 29, 10)) == msk(2026, 2, 28, 10)
    assert parse_deadline("1 month").before(cal, msk(2025, 3, 31, 10)) == msk(2025, 2, 28, 10)


def test_there_are_no_working_months() -> None:
    with pytest.raises(ValueError, match="no working months"):
        parse_deadline("2 working months")


def test_previous_working_day_skips_holidays_and_finds_transferred_saturdays() -> None:
    cal = BusinessCalendar("Europe/Moscow")
    # 3 and 4 November 2025 are days off; Saturday 1 November is a transferred working day
    at_ten = parse_deadline("previous working day at 10:00")
    assert at_ten.due(cal, msk(2025, 11, 5, 15)) == msk(2025, 11, 1, 10)
    assert at_ten.due(cal, msk(2025, 11, 1, 15)) == msk(2025, 10, 31, 10)
    # without a time: the same clock time, kept within that day's hours
    assert parse_deadline("previous working day").due(cal, msk(2025, 10, 29, 20)) == msk(
        2025, 10, 28, 18
    )


def test_a_chain_counts_each_step_from_the_previous_one() -> None:
    cal = BusinessCalendar("Europe/Moscow")
    chain = parse_deadline("7 days then previous working day at 10:00")
    # an invoice of Wednesday 29 October: 7 days end on 5 November; the working day before
    # is Saturday the 1st (the 3rd and the 4th are days off)
    assert chain.due(cal, msk(2025, 10, 29, 12)) == msk(2025, 11, 1, 10)
    assert str(chain) == "7 days then previous working day at 10:00"


def test_only_a_plain_duration_counts_back() -> None:
    with pytest.raises(ValueError, match="counted back"):
        parse_deadline("3 working days").before(BusinessCalendar(), msk(2025, 11, 5, 10))
