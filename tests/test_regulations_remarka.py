"""The example pack (Remarka, seeds/003, rules R1-R7) through the pure engine.

No CRM, no Redis: an event, a record, its previous snapshot and a time go in; a plan
comes out. Times are Moscow time; 2025-10-31 is a Friday, 2025-11-01 a working Saturday
(a transferred working day), 2025-11-03/04 days off.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bridge import config
from bridge.models import Event, Record, RecordRef
from bridge.pipeline import plan_for
from tests.bitrix24_env import TEST_CONFIG

MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def tenant(request: pytest.FixtureRequest) -> config.Tenant:
    mp = pytest.MonkeyPatch()
    mp.setenv("REMARKA_B24_WEBHOOK_URL", "http://127.0.0.1:9/rest/1/x/")
    mp.setenv("REMARKA_B24_APP_TOKEN", "t")
    request.addfinalizer(mp.undo)
    return config.load(TEST_CONFIG).tenants["remarka"]


def deal(stage: str, outcome: str = "open", **fields: object) -> Record:
    return Record(
        "deal",
        "42",
        "bitrix24",
        stage=stage,
        outcome=outcome,
        responsible="3",
        title="Ремонт кухни",
        fields=dict(fields),
    )


def plan(tenant: config.Tenant, record: Record, previous: Record | None, at: datetime):
    event = Event("remarka", "bitrix24", "record.updated", RecordRef("deal", "42"), at)
    return plan_for(tenant, event, record, previous, stay="2")


FRIDAY_EVENING = datetime(2025, 10, 24, 17, 30, tzinfo=MSK)


def test_r1_r6_refusal_without_reason_makes_a_task(tenant: config.Tenant) -> None:
    p = plan(tenant, deal("C1:LOSE", "lost"), deal("meeting"), FRIDAY_EVENING)
    [task] = p.actions
    assert task.kind == "create_task"
    assert task.params.responsible == "3"
    # 2 working hours from Friday 17:30: 30 minutes on Friday, 90 on Monday
    assert task.params.deadline == datetime(2025, 10, 27, 10, 30, tzinfo=MSK)


def test_r1_r6_refusal_with_reason_is_satisfied(tenant: config.Tenant) -> None:
    p = plan(
        tenant, deal("C1:LOSE", "lost", refusal_reason="Дорого"), deal("meeting"), FRIDAY_EVENING
    )
    assert p.actions == ()
    verdict = {d.rule: d.verdict for d in p.decisions}["refusal-needs-reason"]
    assert verdict == "satisfied"


def test_r1_r6_a_deal_already_lost_is_not_asked_again(tenant: config.Tenant) -> None:
    lost = deal("C1:LOSE", "lost")
    assert plan(tenant, lost, lost, FRIDAY_EVENING).actions == ()


def test_r7_postponed_without_next_contact_names_what_is_missing(tenant: config.Tenant) -> None:
    record = deal("postponed", next_contact_at="2025-10-28T10:00:00+03:00")
    [task] = plan(tenant, record, deal("quote_presented"), FRIDAY_EVENING).actions
    # managers read the portal's labels, never canonical names
    assert "Не хватает: Цель следующего контакта." in task.params.description
    assert "next_contact" not in task.params.description


def test_r7_postponed_with_date_and_goal_is_satisfied(tenant: config.Tenant) -> None:
    record = deal("postponed", next_contact_at="2025-10-28T10:00", next_contact_goal="договор")
    assert plan(tenant, record, deal("quote_presented"), FRIDAY_EVENING).actions == ()


def test_r4_follow_up_call_the_next_working_day(tenant: config.Tenant) -> None:
    p = plan(tenant, deal("quote_presented"), deal("estimate"), FRIDAY_EVENING)
    call, contract = p.actions
    assert call.params.title == "Позвонить клиенту по КП: Ремонт кухни"
    assert call.params.deadline == datetime(2025, 10, 27, 12, 0, tzinfo=MSK)
    assert contract.params.deadline == datetime(2025, 10, 27, 17, 30, tzinfo=MSK)


def test_r4_follow_up_on_a_transferred_working_saturday(tenant: config.Tenant) -> None:
    friday = datetime(2025, 10, 31, 15, 0, tzinfo=MSK)
    call, _ = plan(tenant, deal("quote_presented"), deal("estimate"), friday).actions
    assert call.params.deadline == datetime(2025, 11, 1, 12, 0, tzinfo=MSK)


def test_r1_first_contact_chat_and_engineer_callback(tenant: config.Tenant) -> None:
    at = datetime(2025, 10, 22, 11, 0, tzinfo=MSK)
    chat, callback = plan(tenant, deal("first_contact"), None, at).actions
    assert chat.params.deadline == datetime(2025, 10, 22, 11, 10, tzinfo=MSK)
    assert callback.params.responsible == "5"  # the engineer role -> petrov
    assert callback.params.deadline == datetime(2025, 10, 22, 12, 0, tzinfo=MSK)


def test_r3_estimate_task_carries_the_stage_checklist(tenant: config.Tenant) -> None:
    [task] = plan(tenant, deal("estimate"), deal("meeting"), FRIDAY_EVENING).actions
    assert task.params.responsible == "7"
    assert "☐ согласовать смету с руководителем (4 рабочих часа)" in task.params.description


def test_keys_are_stable_across_retries_and_differ_per_stay(tenant: config.Tenant) -> None:
    event = Event("remarka", "bitrix24", "record.updated", RecordRef("deal", "42"), FRIDAY_EVENING)
    lost, before = deal("C1:LOSE", "lost"), deal("meeting")
    first = plan_for(tenant, event, lost, before, stay="5").actions[0].key
    again = plan_for(tenant, event, lost, before, stay="5").actions[0].key
    later = plan_for(tenant, event, lost, before, stay="9").actions[0].key
    assert first == again != later
