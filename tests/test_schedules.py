"""Sweep schedules: days and a time in the tenant's zone and calendar, intervals, cron."""

from __future__ import annotations

from datetime import datetime

import pytest

from bridge.calendar import BusinessCalendar
from bridge.regulations.pack import Pack
from bridge.schedules import parse_schedule

MOSCOW = BusinessCalendar("Europe/Moscow")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def runs(schedule: str, after: str, until: str, calendar: BusinessCalendar = MOSCOW) -> list[str]:
    found = parse_schedule(schedule).runs(at(after), at(until), calendar)
    return [moment.isoformat(timespec="minutes") for moment in found]


def test_every_monday_at_ten_in_the_tenants_zone() -> None:
    assert runs("every monday 10:00", "2025-11-14T12:00+03:00", "2025-11-25T00:00+03:00") == [
        "2025-11-17T10:00+03:00",
        "2025-11-24T10:00+03:00",
    ]
    vladivostok = BusinessCalendar("Asia/Vladivostok")
    assert runs(
        "monday 10:00", "2025-11-14T12:00+03:00", "2025-11-18T00:00+03:00", vladivostok
    ) == ["2025-11-17T10:00+10:00"]


def test_a_run_on_a_public_holiday_moves_to_the_next_working_day() -> None:
    # 5 January 2026 is a Monday of the New Year holidays (1-8 January, and the 9th moved)
    assert runs("monday 10:00", "2026-01-01T00:00+03:00", "2026-01-13T00:00+03:00") == [
        "2026-01-12T10:00+03:00"
    ]
    # a Tuesday holiday (4 November 2025) moves to Wednesday; Wednesday gets no second run
    assert runs("tue, wed 09:30", "2025-11-03T00:00+03:00", "2025-11-06T00:00+03:00") == [
        "2025-11-05T09:30+03:00"
    ]


def test_every_day_is_every_working_day_and_a_cron_expression_is_exact() -> None:
    assert runs("day 18:00", "2025-11-14T19:00+03:00", "2025-11-18T00:00+03:00") == [
        "2025-11-17T18:00+03:00"
    ]
    assert runs("0 10 * * 6", "2025-11-14T00:00+03:00", "2025-11-16T00:00+03:00") == [
        "2025-11-15T10:00+03:00"  # a Saturday: cron does not look at the calendar
    ]
    assert runs("90 minutes", "2025-11-14T00:00+03:00", "2025-11-14T03:00+03:00") == [
        "2025-11-14T01:30+03:00",
        "2025-11-14T03:00+03:00",
    ]


@pytest.mark.parametrize("text", ["monday", "понедельник 10:00", "mon 25:00", "next day at 10:00"])
def test_a_bad_schedule_lists_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="accepted forms: 'monday 10:00'"):
        parse_schedule(text)


def test_every_needs_a_sweep_rule() -> None:
    rule = {"id": "r", "every": "monday 10:00", "then": [{"add_comment": {"text": "x"}}]}
    with pytest.raises(ValueError, match="`every` schedules a sweep: add `event: sweep`"):
        Pack.model_validate({"pack": "p", "rules": [rule]})
    rule["when"] = {"event": "sweep"}
    assert Pack.model_validate({"pack": "p", "rules": [rule]}).rules[0].every == "monday 10:00"
