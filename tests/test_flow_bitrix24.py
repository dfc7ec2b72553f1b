"""The whole flow on Bitrix24, end to end over real HTTP and a real Redis.

The sandbox posts events as a portal does (D:api-reference/events/index.md: form-encoded,
PHP bracket keys, only the id in data[FIELDS][ID]); the bridge answers, queues, and the
worker writes tasks back through fast-bitrix24.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests

from bridge import formdata
from bridge.crms.connector import READ_RETRY_DELAYS
from tests.bitrix24_env import Bridge, deal
from tests.conftest import journal_on

REASON = "UF_CRM_1700000001"


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same flow on SQLite and on PostgreSQL (the production journal)."""
    return journal_on(request, tmp_path)


def lost_deal(bridge: Bridge, **fields: str) -> int:
    """A deal in the meeting stage, then moved to the lost stage by its manager."""
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE", **fields}, by_user=3)
    bridge.work()
    return deal_id


def test_lost_deal_without_reason_gets_one_task_for_its_manager(bridge: Bridge) -> None:
    deal_id = lost_deal(bridge)
    tasks = bridge.sandbox.tasks_for(f"D_{deal_id}")
    assert len(tasks) == 1
    task = tasks[0]
    assert task["RESPONSIBLE_ID"] == "3"
    assert task["TITLE"] == "Укажите причину отказа: Ремонт кухни"
    event = next(e["event"] for e in bridge.runtime.journal.recent() if e["actions"])
    calendar = bridge.runtime.tenant("remarka").calendar
    due = calendar.add_working(event.received_at, timedelta(hours=2))
    assert task["DEADLINE"] == due.isoformat(timespec="seconds")


def test_a_second_lost_stage_counts_as_lost_too(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:APOLOGY"})
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_lost_deal_with_reason_gets_no_task(bridge: Bridge) -> None:
    deal_id = lost_deal(bridge, **{REASON: "Дорого"})
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []
    latest = bridge.runtime.journal.recent(1)[0]
    verdicts = {d.rule: d.verdict for d in latest["decisions"]}
    assert verdicts["refusal-needs-reason"] == "satisfied"


def test_the_same_webhook_three_times_makes_one_task(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.sandbox.wait_delivered()
    delivered = bridge.sandbox.deliveries[-1]
    body = _event_body(bridge, "ONCRMDEALUPDATE", deal_id, ts=delivered.get("ts", "1766047124"))
    answers = [_post(bridge, body) for _ in range(3)]
    bridge.work()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_the_bridge_settles_on_its_own_echo(bridge: Bridge) -> None:
    deal_id = lost_deal(bridge)
    bridge.sandbox.update_deal(deal_id, {"TITLE": "Ремонт кухни и коридора"})  # an unrelated edit
    bridge.settle()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_bad_token_is_refused_and_nothing_is_queued(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.sandbox.wait_delivered()
    queued = bridge.runtime.queue.waiting()
    answer = bridge.sandbox.post_event(
        "ONCRMDEALUPDATE", deal_id, bridge.hook_url, application_token="forged"
    )
    assert answer.status_code == 403
    assert "application_token" in answer.json()["reason"]
    assert bridge.runtime.queue.waiting() == queued
    assert bridge.runtime.journal.recent(1)[0]["event"].status == "rejected"


def test_body_without_the_id_is_refused_naming_the_key(bridge: Bridge) -> None:
    answer = bridge.sandbox.post_event(
        "ONCRMDEALUPDATE", 1, bridge.hook_url, drop_keys=("data[FIELDS][ID]",)
    )
    assert answer.status_code == 400
    assert answer.json()["reason"] == "missing data[FIELDS][ID]"
    rejected = bridge.runtime.journal.recent(1)[0]["event"]
    assert (rejected.status, rejected.reason) == ("rejected", "missing data[FIELDS][ID]")


def test_rate_limited_portal_gets_the_task_once_later(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    # two refusals are asked again inside the read; the third and fourth outlast its
    # READ_RETRY_DELAYS, and the event waits one retry interval
    refusals = 2 * (1 + len(READ_RETRY_DELAYS))
    bridge.sandbox.fail_next("crm.deal.get", times=refusals)
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    event = bridge.runtime.journal.recent(1)[0]["event"]
    assert (event.status, event.attempts) == ("processed", 2)
    gets = [r for r in bridge.sandbox.requests_log if r["method"] == "crm.deal.get"]
    assert len(gets) == 2  # the add's and the update's: a refused call is never run


def test_rate_limited_batch_is_retried_without_a_second_task(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.fail_next("tasks.task.add", times=2)
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def _event_body(bridge: Bridge, event: str, deal_id: int, ts: str) -> str:
    return formdata.build_query(
        {
            "event": event,
            "event_handler_id": "1",
            "data": {"FIELDS": {"ID": str(deal_id)}},
            "ts": ts,
            "auth": {
                "domain": "sandbox.bitrix24.ru",
                "member_id": "sandbox-member",
                "application_token": bridge.sandbox.application_token,
            },
        }
    )


def _post(bridge: Bridge, body: str) -> requests.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return requests.post(bridge.hook_url, data=body, headers=headers, timeout=5)
