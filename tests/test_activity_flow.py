"""A rule on what an activity is: an incoming call on a deal, not an outgoing e-mail.

ONCRMACTIVITYADD carries the activity's id only (D:api-reference/crm/timeline/activities/events/
on-crm-activity-add.md); the bridge reads it with crm.activity.get for its owner, TYPE_ID and
DIRECTION (D:api-reference/crm/data-types.md#activity-enums).
"""

from __future__ import annotations

from collections import Counter

import pytest

from bridge import queue
from bridge.models import RecordRef
from tests.bitrix24_env import ROOT, Bridge, deal

PACK = """
version: 1
pack: activity-test
rules:
  - id: incoming-call-noted
    when: {kind: deal, event: activity.created, if: {activity: {type: call, direction: incoming}}}
    then:
      - add_comment: {text: "Входящий звонок: перезвоните клиенту в течение часа"}
"""


@pytest.fixture
def bridge(make_bridge, tmp_path) -> Bridge:
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    config = (ROOT / "tests" / "fixtures" / "bridge.yaml").read_text(encoding="utf-8")
    config = config.replace("../../config/mappings/", f"{ROOT}/config/mappings/")
    config = config.replace("      - ../../config/regulations/remarka.yaml", "      - pack.yaml")
    (tmp_path / "bridge.yaml").write_text(config, encoding="utf-8")
    env = make_bridge(tmp_path / "bridge.yaml")
    env.sandbox.subscribe("ONCRMACTIVITYADD", env.hook_url)
    return env


def activity(deal_id: int, type_id: str, direction: str) -> dict:
    return {
        "OWNER_TYPE_ID": "2",
        "OWNER_ID": str(deal_id),
        "TYPE_ID": type_id,
        "DIRECTION": direction,
        "SUBJECT": "Звонок",
        "COMPLETED": "Y",
        "RESPONSIBLE_ID": "3",
    }


def test_an_incoming_call_is_noted_and_an_outgoing_email_is_not(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.add_activity(activity(deal_id, "4", "2"))  # an outgoing e-mail
    bridge.work()
    assert bridge.sandbox.comments_for("deal", deal_id) == []
    bridge.sandbox.add_activity(activity(deal_id, "2", "1"))  # an incoming call
    bridge.work()
    [comment] = bridge.sandbox.comments_for("deal", deal_id)
    assert comment["COMMENT"] == "Входящий звонок: перезвоните клиенту в течение часа"


OUTCOME_PACK = """
version: 1
pack: outcome-test
rules:
  - id: contact-needs-next-step
    when:
      kind: deal
      event: activity.completed
      in_stage: open
      if: {all: [{activity: {type: [call, meeting]}}, {activity_planned: false}]}
    then:
      - add_comment: {text: "Контакт завершён, следующий не запланирован"}
"""


@pytest.fixture
def outcome_bridge(make_bridge, tmp_path) -> Bridge:
    (tmp_path / "pack.yaml").write_text(OUTCOME_PACK, encoding="utf-8")
    config = (ROOT / "tests" / "fixtures" / "bridge.yaml").read_text(encoding="utf-8")
    config = config.replace("../../config/mappings/", f"{ROOT}/config/mappings/")
    config = config.replace("      - ../../config/regulations/remarka.yaml", "      - pack.yaml")
    (tmp_path / "bridge.yaml").write_text(config, encoding="utf-8")
    env = make_bridge(tmp_path / "bridge.yaml")
    for name in ("ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"):
        env.sandbox.subscribe(name, env.hook_url)
    return env


def test_a_call_marked_done_is_heard_and_a_planned_one_is_seen(outcome_bridge: Bridge) -> None:
    # ONCRMACTIVITYUPDATE: data[FIELDS][ID] is the activity's id
    # (D:api-reference/crm/timeline/activities/events/on-crm-activity-update.md)
    bridge = outcome_bridge
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    call = bridge.sandbox.add_activity({**activity(deal_id, "2", "2"), "COMPLETED": "N"})
    bridge.work()
    assert bridge.sandbox.comments_for("deal", deal_id) == []  # planned, not done
    bridge.sandbox.update_activity(call, {"COMPLETED": "Y"})
    bridge.work()
    [comment] = bridge.sandbox.comments_for("deal", deal_id)
    assert comment["COMMENT"] == "Контакт завершён, следующий не запланирован"
    event = bridge.runtime.journal.recent(1)[0]["event"]
    assert (event.source, event.type, event.subject) == (
        "ONCRMACTIVITYUPDATE",
        "activity.updated",
        str(call),
    )


def test_a_done_call_with_the_next_one_scheduled_asks_nothing(outcome_bridge: Bridge) -> None:
    bridge = outcome_bridge
    deal_id = bridge.sandbox.add_deal(deal("Ремонт ванной", "C1:MEETING"))
    bridge.work()
    later = {
        **activity(deal_id, "1", "2"),
        "COMPLETED": "N",
        "DEADLINE": "2030-01-10T10:00:00+03:00",
    }
    bridge.sandbox.add_activity(later)  # the next meeting, planned in the portal
    call = bridge.sandbox.add_activity({**activity(deal_id, "2", "2"), "COMPLETED": "N"})
    bridge.work()
    bridge.sandbox.update_activity(call, {"COMPLETED": "Y"})
    bridge.work()
    assert bridge.sandbox.comments_for("deal", deal_id) == []


def test_forty_calls_marked_done_cost_the_portal_four_requests(outcome_bridge: Bridge) -> None:
    # the portal's limit is counted in requests (2 a second on most plans), a `batch` of up to
    # 50 commands being one (D:settings/how-to-call-rest-api/batch.md): the activities, the
    # deals, their open activities and the comments each ride in one
    bridge = outcome_bridge
    deals = [bridge.sandbox.add_deal(deal(f"Ремонт {i}", "C1:MEETING")) for i in range(40)]
    calls = [
        bridge.sandbox.add_activity({**activity(d, "2", "2"), "COMPLETED": "N"}) for d in deals
    ]
    bridge.work()
    since = len(bridge.sandbox.requests_log)
    for call in calls:
        bridge.sandbox.update_activity(call, {"COMPLETED": "Y"})
    bridge.work()
    log = bridge.sandbox.requests_log[since:]
    assert [e["method"] for e in log if not e.get("batch")] == ["batch"] * 4
    assert Counter(e["method"] for e in log if e.get("batch")) == {
        "crm.activity.get": 40,
        "crm.deal.get": 40,
        "crm.activity.list": 40,
        "crm.timeline.comment.add": 40,
    }
    assert all(len(bridge.sandbox.comments_for("deal", d)) == 1 for d in deals)


def test_what_a_batch_read_is_not_answered_again_after_it(outcome_bridge: Bridge) -> None:
    # the connector is shared by a worker's threads (its drainer's batches, rq's sweeps): a
    # sweep asking after the batch must see the portal as it is now, not as the batch read it
    bridge = outcome_bridge
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    call = bridge.sandbox.add_activity({**activity(deal_id, "2", "2"), "COMPLETED": "N"})
    bridge.work()
    bridge.sandbox.update_activity(call, {"COMPLETED": "Y"})
    bridge.work()  # the batch read the deal's open activities: none
    later = {**activity(deal_id, "1", "2"), "COMPLETED": "N", "DEADLINE": "2030-01-10T10:00:00"}
    bridge.sandbox.add_activity(later)  # a manager plans the next meeting

    conn = bridge.runtime.connector(bridge.runtime.tenant("remarka"))
    record = conn.fetch(RecordRef("deal", str(deal_id)))
    planned = conn.planned_activity(record)
    assert planned is not None and planned.year == 2030


CHANGE_PACK = """
version: 1
pack: change-test
rules:
  - id: stage-changed
    when:
      kind: deal
      event: record.updated
      if: {changed: stage}
    then:
      - add_comment: {text: "Стадия сменилась"}
"""


def test_a_parked_deal_event_still_sees_its_change_after_an_activity_of_the_deal(
    make_bridge, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an activity event is keyed by its activity, so it is not parked behind its deal's
    # parked event; it must not take from that event the change it is about
    (tmp_path / "pack.yaml").write_text(CHANGE_PACK, encoding="utf-8")
    config = (ROOT / "tests" / "fixtures" / "bridge.yaml").read_text(encoding="utf-8")
    config = config.replace("../../config/mappings/", f"{ROOT}/config/mappings/")
    config = config.replace("      - ../../config/regulations/remarka.yaml", "      - pack.yaml")
    config = config.replace("retry_intervals: [0, 0, 0]", "retry_intervals: [600, 600]")
    (tmp_path / "bridge.yaml").write_text(config, encoding="utf-8")
    bridge = make_bridge(tmp_path / "bridge.yaml")
    for name in ("ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"):
        bridge.sandbox.subscribe(name, bridge.hook_url)
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()

    bridge.sandbox.fail_next("crm.timeline.comment.add", status=500)
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()  # the comment failed: the deal's event is parked for ten minutes
    assert bridge.sandbox.comments_for("deal", deal_id) == []
    bridge.sandbox.add_activity({**activity(deal_id, "2", "2"), "COMPLETED": "Y"})
    bridge.work()  # the call is heard meanwhile

    now = queue.now_ms()
    monkeypatch.setattr(queue, "now_ms", lambda: now + 601_000)
    bridge.work()
    comments = [c["COMMENT"] for c in bridge.sandbox.comments_for("deal", deal_id)]
    assert comments == ["Стадия сменилась"]
