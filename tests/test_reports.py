"""The report arithmetic on hand-made verdict streams: violations tallied, SLA episodes
opened, ended and measured as the module says, and tables exported."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import openpyxl

from bridge.models import RecordRef
from bridge.regulations.pack import load_pack
from bridge.reports import sla, verdicts
from bridge.reports.tables import Table, to_csv, to_xlsx
from bridge.reports.verdicts import Change, Judged, Period
from tests.bitrix24_env import ROOT

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
RULES = {r.id: r for r in load_pack(ROOT / "config/regulations/remarka.yaml")[0].rules}


def ref(n: int) -> RecordRef:
    return RecordRef("deal", str(n))


def test_violations_are_tallied_per_rule_manager_and_stage() -> None:
    items = [
        Judged(
            T0, ref(1), "refusal-needs-reason", "fired", "missing", responsible="3", stage="C1:LOSE"
        ),
        Judged(
            T0, ref(2), "refusal-needs-reason", "fired", "missing", responsible="3", stage="C1:LOSE"
        ),
        Judged(
            T0,
            ref(3),
            "crew-booking-expires",
            "fired",
            "overdue",
            responsible="5",
            stage="crew_booked",
        ),
        Judged(
            T0, ref(4), "first-contact-chat-and-callback", "fired", responsible="5"
        ),  # no breach
        Judged(T0, ref(5), "crew-booking-expires", "fired", "overdue", stage="crew_booked"),
    ]
    people = {"3": "ivanova"}
    assert verdicts.per_rule(items).rows == [
        ("crew-booking-expires", "просрочен срок", 2),
        ("refusal-needs-reason", "не заполнены поля", 2),
    ]
    assert verdicts.per_manager(items, people).rows == [
        ("ivanova (3)", 2),
        ("5", 1),
        ("не назначен", 1),
    ]
    assert verdicts.per_stage(items).rows == [("C1:LOSE", 2), ("crew_booked", 2)]


def test_sla_episodes_are_met_missed_and_measured() -> None:
    rule = "crew-booking-expires"  # within 3 days, ended by leaving the stage
    due = T0 + 72 * H
    items = [
        # deal 1 leaves the stage after 10 hours: met, 10 h taken
        Judged(T0, ref(1), rule, "scheduled", due=due),
        Judged(due, ref(1), rule, "not_matched", step=0),
        # deal 2 stays: missed, then leaves 100 hours after the start
        Judged(T0, ref(2), rule, "scheduled", due=due),
        Judged(due, ref(2), rule, "fired", "overdue", step=0),
        # deal 3 is still waiting for its timer: no episode yet
        Judged(T0 + 90 * H, ref(3), rule, "scheduled", due=T0 + 162 * H),
    ]
    changes = [
        Change(T0 + 10 * H, ref(1), "stage"),
        Change(T0 + 100 * H, ref(2), "stage"),
        Change(T0 + 1 * H, ref(2), "title"),  # not what the rule watches
    ]
    found = sla.episodes(items, changes, RULES)
    assert [(e.ref.id, e.met, e.taken(T0)) for e in found] == [
        ("1", True, 10 * H),
        ("2", False, 100 * H),
    ]
    [row] = sla.compliance(found, Period(T0 - H, T0 + H), T0 + 200 * H)
    assert (row.episodes, row.met, row.share) == (2, 1, 0.5)
    assert (row.median, row.p90, row.deadline) == (10 * H, 100 * H, 72 * H)
    assert sla.table([row]).rows == [(rule, 2, 1, 50.0, 10.0, 100.0, 72.0)]


def test_an_at_rule_is_measured_from_its_reminder_to_its_escalation() -> None:
    rule = "estimate-approval-in-4-hours"  # at estimate_ready_at, escalates after 4 hours
    items = [
        Judged(T0, ref(1), rule, "scheduled", due=T0 + 2 * H),
        Judged(T0 + 2 * H, ref(1), rule, "fired", step=0, due=T0 + 6 * H),  # the reminder
        Judged(T0 + 6 * H, ref(1), rule, "satisfied", step=1),
    ]
    changes = [Change(T0 + 5 * H, ref(1), "estimate_approved_at")]
    [episode] = sla.episodes(items, changes, RULES)
    assert episode.start == T0 + 2 * H and episode.deadline == 4 * H
    assert episode.met and episode.taken(T0 + 99 * H) == 3 * H


def test_a_missed_deadline_nothing_ended_counts_up_to_now() -> None:
    rule = "crew-booking-expires"
    items = [
        Judged(T0, ref(1), rule, "scheduled", due=T0 + 72 * H),
        Judged(T0 + 72 * H, ref(1), rule, "fired", "overdue", step=0),
    ]
    [episode] = sla.episodes(items, [], RULES)
    assert episode.taken(T0 + 80 * H) == 80 * H


def test_tables_export_as_csv_and_xlsx() -> None:
    table = Table("t", "Отчёт", ("Когда (UTC)", "Правило", "Число"), [(T0, "правило", 3)])
    assert to_csv(table).decode("utf-8-sig").splitlines() == [
        "Когда (UTC),Правило,Число",
        "2025-03-03T09:00:00+00:00,правило,3",
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(table))).active
    assert sheet.title == "Отчёт"
    assert list(sheet.iter_rows(values_only=True))[1] == (datetime(2025, 3, 3, 9, 0), "правило", 3)
