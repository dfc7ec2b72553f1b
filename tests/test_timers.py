"""SLA timers on real Redis and the sandbox: set once, moved with their date, re-checked on
fresh data when they fire, escalated when still unmet."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge import timers
from tests.bitrix24_env import ROOT, Bridge, deal

CONFIG = ROOT / "tests" / "fixtures" / "timers.yaml"
GOAL, NEXT_AT = "UF_CRM_1700000003", "UF_CRM_1700000002"


@pytest.fixture
def bridge(make_bridge) -> Bridge:
    return make_bridge(CONFIG)


def scheduled(bridge: Bridge) -> list[str]:
    return [member for member, _ in timers.pending(bridge.runtime.redis)]


def fire(bridge: Bridge, member: str) -> None:
    """Let a scheduled timer come due now, then work the queue."""
    bridge.runtime.redis.zadd(timers.KEY, {member: 0})
    bridge.work()


def quoted_deal(bridge: Bridge) -> int:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:ESTIMATE"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:PRESENTATION"})
    bridge.work()
    return deal_id


def test_a_timer_is_set_once_however_often_the_event_comes(bridge: Bridge) -> None:
    deal_id = quoted_deal(bridge)
    [job] = scheduled(bridge)
    bridge.sandbox.update_deal(deal_id, {"TITLE": "Ремонт кухни, 12 м²"})  # same stay, new event
    bridge.work()
    assert scheduled(bridge) == [job]
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []


def test_a_timer_whose_unless_became_true_does_nothing(bridge: Bridge) -> None:
    deal_id = quoted_deal(bridge)
    [job] = scheduled(bridge)
    # the manager records the goal, and the webhook of that change is lost
    bridge.sandbox.deals[deal_id][GOAL] = "Согласовать дату договора"
    fire(bridge, job)
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []
    verdicts = [d.verdict for e in bridge.runtime.journal.recent(1) for d in e["decisions"]]
    assert verdicts == ["satisfied"]


def test_a_due_timer_acts_and_escalates(bridge: Bridge) -> None:
    deal_id = quoted_deal(bridge)
    [job] = scheduled(bridge)
    fire(bridge, job)
    [task] = bridge.sandbox.tasks_for(f"D_{deal_id}")
    assert task["TITLE"] == "Зафиксируйте цель следующего контакта: Ремонт кухни"
    [escalation] = scheduled(bridge)
    fire(bridge, escalation)
    titles = [t["TITLE"] for t in bridge.sandbox.tasks_for(f"D_{deal_id}")]
    assert titles[1] == "Цель контакта так и не указана: Ремонт кухни"
    assert bridge.sandbox.tasks_for(f"D_{deal_id}")[1]["RESPONSIBLE_ID"] == "9"
    assert scheduled(bridge) == []


def test_a_timer_left_behind_by_a_stage_change_does_nothing(bridge: Bridge) -> None:
    deal_id = quoted_deal(bridge)
    [job] = scheduled(bridge)
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:CREW"})
    bridge.work()
    fire(bridge, job)
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []


def test_the_timer_moves_with_its_date(bridge: Bridge) -> None:
    first = (datetime.now().astimezone() + timedelta(days=2)).replace(microsecond=0)
    deal_id = bridge.sandbox.add_deal(
        deal("Ремонт кухни", "C1:POSTPONED", **{NEXT_AT: first.isoformat()})
    )
    bridge.work()
    [(job, due)] = timers.pending(bridge.runtime.redis)
    assert due == first
    later = first + timedelta(days=1)
    bridge.sandbox.update_deal(deal_id, {NEXT_AT: later.isoformat()})
    bridge.work()
    assert timers.pending(bridge.runtime.redis) == [(job, later)]
