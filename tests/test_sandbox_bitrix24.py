"""The Bitrix24 sandbox over real HTTP: fast-bitrix24 unmodified, documented shapes and errors.

Sources of the expected shapes: D:api-reference/crm/deals/crm-deal-get.md, crm-deal-list.md,
D:settings/how-to-call-rest-api/batch.md, D:_includes/system-errors.md,
D:api-reference/events/index.md (see /work/shared/reference/bitrix24.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fast_bitrix24 import Bitrix
from flask import Flask, request

from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.formdata import build_query, parse_pairs
from bridge.sandbox.server import LoopbackServer

TIME_KEYS = {
    "start",
    "finish",
    "duration",
    "processing",
    "date_start",
    "date_finish",
    "operating_reset_at",
    "operating",
}
EVENT_KEYS = {
    "event",
    "event_handler_id",
    "data[FIELDS][ID]",
    "ts",
    "auth[domain]",
    "auth[client_endpoint]",
    "auth[server_endpoint]",
    "auth[member_id]",
    "auth[application_token]",
}
REPAIR = [("NEW", "New request", "P"), ("MEETING", "Meeting", "P")]
REPAIR += [("WON", "Contract signed", "S"), ("LOSE", "Refused", "F"), ("APOLOGY", "Why", "F")]


@pytest.fixture
def sandbox() -> Iterator[Bitrix24Sandbox]:
    """A started sandbox with a second pipeline "Repair" (category 1)."""
    sb = Bitrix24Sandbox().start()
    sb.add_user(3, "Anna", "Ivanova", "anna@example.com")
    sb.add_pipeline(1, "Repair", REPAIR)
    yield sb
    sb.stop()


@pytest.fixture
def b24(sandbox: Bitrix24Sandbox) -> Bitrix:
    """fast-bitrix24 pointed at the sandbox, unmodified."""
    return Bitrix(sandbox.webhook_url, verbose=False)


class Receiver:
    """A tiny handler server that records what the portal posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.threads: list[str] = []
        app = Flask(__name__)
        app.add_url_rule("/hook", "hook", self._hook, methods=["POST"])
        self.server = LoopbackServer(app).start()
        self.url = f"{self.server.url}/hook"

    def _hook(self) -> tuple[str, int]:
        self.posts.append(
            {"content_type": request.mimetype, "form": list(request.form.items(multi=True))}
        )
        self.threads.append(threading.current_thread().name)
        return "", 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.stop()


def rest(sandbox: Bitrix24Sandbox, method: str, payload: dict[str, Any]) -> requests.Response:
    return requests.post(sandbox.webhook_url + method, json=payload, timeout=5)


# --- fast-bitrix24 against the sandbox ------------------------------------------------------


def test_raw_get_returns_the_documented_envelope(sandbox: Bitrix24Sandbox, b24: Bitrix) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen", "STAGE_ID": "C1:MEETING", "OPPORTUNITY": 5})
    reply = b24.call("crm.deal.get", {"id": deal_id}, raw=True)
    deal = reply["result"]
    assert set(reply["time"]) == TIME_KEYS
    assert deal["ID"] == str(deal_id)
    assert (deal["TITLE"], deal["CATEGORY_ID"], deal["STAGE_ID"]) == ("Kitchen", "1", "C1:MEETING")
    assert (deal["STAGE_SEMANTIC_ID"], deal["CLOSED"], deal["OPPORTUNITY"]) == ("P", "N", "5.00")
    assert deal["DATE_CREATE"][-6:] == "+03:00"


def test_get_all_pages_through_more_than_fifty_deals(sandbox: Bitrix24Sandbox, b24: Bitrix) -> None:
    for n in range(120):
        sandbox.add_deal({"TITLE": f"Deal {n}", "STAGE_ID": "C1:NEW" if n % 2 else "NEW"})
    deals = b24.get_all("crm.deal.list", {"filter": {"CATEGORY_ID": 1}, "select": ["ID", "TITLE"]})
    assert len(deals) == 60
    assert sorted(int(d["ID"]) for d in deals) == list(range(2, 121, 2))
    assert all(set(d) == {"ID", "TITLE"} for d in deals)
    lists = [r for r in sandbox.requests_log if r["method"] == "crm.deal.list"]
    assert [r.get("batch", False) for r in lists] == [False, True]  # page 1, then page 2 in batch


def test_call_update_goes_through_batch_and_applies(sandbox: Bitrix24Sandbox, b24: Bitrix) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Old", "STAGE_ID": "C1:NEW"})
    result = b24.call("crm.deal.update", {"id": deal_id, "fields": {"TITLE": "New", "NOPE": "x"}})
    assert result is True
    assert sandbox.deals[deal_id]["TITLE"] == "New"
    assert "NOPE" not in sandbox.deals[deal_id]  # unknown fields are silently ignored
    http = [r["method"] for r in sandbox.requests_log if not r.get("batch")]
    assert http == ["batch"]
    sub = [r for r in sandbox.requests_log if r.get("batch")]
    assert sub[0]["method"] == "crm.deal.update"
    assert sub[0]["params"]["fields"] == {"TITLE": "New", "NOPE": "x"}


def test_call_task_add_returns_the_camel_case_task(sandbox: Bitrix24Sandbox, b24: Bitrix) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen", "STAGE_ID": "C1:LOSE"})
    fields = {"TITLE": "Ask why", "RESPONSIBLE_ID": 3, "UF_CRM_TASK": [f"D_{deal_id}"]}
    fields |= {"DEADLINE": "2025-12-31T18:00:00+03:00", "XML_ID": "bridge:k1"}
    task = b24.call("tasks.task.add", {"fields": fields})
    assert (task["title"], task["responsibleId"], task["xmlId"]) == ("Ask why", "3", "bridge:k1")
    assert task["status"] == "2"
    assert task["deadline"] == "2025-12-31T18:00:00+03:00"
    assert task["responsible"]["name"] == "Anna Ivanova"
    assert "ufCrmTask" not in task  # only when selected
    [stored] = sandbox.tasks_for(f"D_{deal_id}")
    assert stored["TITLE"] == "Ask why"
    listed = b24.get_all(
        "tasks.task.list",
        {"filter": {"UF_CRM_TASK": f"D_{deal_id}"}, "select": ["ID", "XML_ID", "UF_CRM_TASK"]},
    )
    assert listed == [
        {
            "id": task["id"],
            "xmlId": "bridge:k1",
            "ufCrmTask": [f"D_{deal_id}"],
            "ufTaskWebdavFiles": [],
            "ufMailMessage": None,
        }
    ]


def test_task_without_title_is_an_error_core(sandbox: Bitrix24Sandbox) -> None:
    answer = rest(sandbox, "tasks.task.add", {"fields": {"RESPONSIBLE_ID": 3}})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "ERROR_CORE",
        "error_description": "Task title is not specified<br>",
    }
    assert sandbox.tasks == {}


# --- batch and faults ---------------------------------------------------------------------


def test_batch_keeps_the_sibling_result_next_to_the_error(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    cmd = {"ok": f"crm.deal.get?id={deal_id}", "bad": "crm.deal.get?id=999"}
    cmd["list"] = "crm.deal.list?select[]=ID&filter[>ID]=0"
    answer = rest(sandbox, "batch", {"halt": 0, "cmd": cmd})
    assert answer.status_code == 200
    body = answer.json()["result"]
    assert body["result"]["ok"]["TITLE"] == "Kitchen"
    assert body["result"]["list"] == [{"ID": str(deal_id)}]
    assert body["result_error"] == {"bad": {"error": "", "error_description": "Not found"}}
    assert body["result_total"] == {"list": 1}
    assert set(body["result_time"]) == {"ok", "list"}


def test_activities_are_read_and_listed_inside_a_batch(sandbox: Bitrix24Sandbox) -> None:
    # D:api-reference/crm/timeline/activities/activity-base/crm-activity-get.md and
    # crm-activity-list.md, as commands of a batch (D:settings/how-to-call-rest-api/batch.md)
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    owner = {"OWNER_TYPE_ID": "2", "OWNER_ID": str(deal_id), "TYPE_ID": "2", "DIRECTION": "2"}
    done = sandbox.add_activity({**owner, "COMPLETED": "Y"})
    sandbox.add_activity({**owner, "COMPLETED": "N", "DEADLINE": "2030-01-10T10:00:00+03:00"})
    listing = {
        "filter": {"OWNER_TYPE_ID": 2, "OWNER_ID": str(deal_id), "COMPLETED": "N"},
        "order": {"DEADLINE": "ASC"},
        "select": ["ID", "DEADLINE"],
    }
    cmd = {"got": f"crm.activity.get?id={done}", "gone": "crm.activity.get?id=999"}
    cmd["open"] = f"crm.activity.list?{build_query(listing)}"
    body = rest(sandbox, "batch", {"halt": 0, "cmd": cmd}).json()["result"]
    assert (body["result"]["got"]["OWNER_ID"], body["result"]["got"]["COMPLETED"]) == (
        str(deal_id),
        "Y",
    )
    assert [set(a) for a in body["result"]["open"]] == [{"ID", "DEADLINE"}]
    assert body["result"]["open"][0]["DEADLINE"].startswith("2030-01-10")
    assert set(body["result_error"]) == {"gone"}


def test_batch_halt_stops_and_nested_batch_is_refused(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    cmd = {"nested": "batch?cmd[x]=user.get", "after": f"crm.deal.get?id={deal_id}"}
    body = rest(sandbox, "batch", {"halt": 1, "cmd": cmd}).json()["result"]
    assert body["result"] == []
    assert body["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert "after" not in body["result_error"]


def test_batch_over_fifty_commands_fails_the_extra_ones(sandbox: Bitrix24Sandbox) -> None:
    cmd = {f"c{i}": "user.get?ID=1" for i in range(52)}
    body = rest(sandbox, "batch", {"halt": 0, "cmd": cmd}).json()["result"]
    assert len(body["result"]) == 50
    assert set(body["result_error"]) == {"c50", "c51"}
    assert body["result_error"]["c50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"


def test_fail_next_fails_exactly_n_calls_then_succeeds(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    sandbox.fail_next("crm.deal.get", times=2)
    answers = [rest(sandbox, "crm.deal.get", {"id": deal_id}) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    assert answers[2].json()["result"]["ID"] == str(deal_id)


def test_fail_next_rejects_a_batch_whole_and_fast_bitrix24_retries(
    sandbox: Bitrix24Sandbox, b24: Bitrix
) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Old"})
    sandbox.fail_next("crm.deal.update", times=2)
    assert b24.call("crm.deal.update", {"id": deal_id, "fields": {"TITLE": "New"}}) is True
    batches = [r for r in sandbox.requests_log if r["method"] == "batch"]
    updates = [r for r in sandbox.requests_log if r["method"] == "crm.deal.update"]
    assert (len(batches), len(updates)) == (3, 1)  # two refused before any processing
    assert sandbox.deals[deal_id]["TITLE"] == "New"


# --- outgoing webhooks ----------------------------------------------------------------------


def test_rest_update_posts_the_documented_event(
    sandbox: Bitrix24Sandbox, b24: Bitrix, receiver: Receiver
) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen", "STAGE_ID": "C1:NEW"})
    sandbox.subscribe("ONCRMDEALUPDATE", receiver.url)
    b24.call("crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "C1:MEETING"}})
    sandbox.wait_delivered()
    [post] = receiver.posts
    assert post["content_type"] == "application/x-www-form-urlencoded"
    form = dict(post["form"])
    assert set(form) == EVENT_KEYS
    assert form["event"] == "ONCRMDEALUPDATE"
    assert form["data[FIELDS][ID]"] == str(deal_id)
    assert form["auth[application_token]"] == sandbox.application_token
    assert form["auth[domain]"] == "sandbox.bitrix24.ru"
    assert form["auth[client_endpoint]"] == "https://sandbox.bitrix24.ru/rest/"
    assert parse_pairs(post["form"])["data"] == {"FIELDS": {"ID": str(deal_id)}}
    assert [(d["event"], d["id"], d["status"]) for d in sandbox.deliveries] == [
        ("ONCRMDEALUPDATE", deal_id, 200)
    ]


def test_only_subscribed_events_are_posted(sandbox: Bitrix24Sandbox, receiver: Receiver) -> None:
    sandbox.subscribe("ONCRMDEALADD", receiver.url)
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    sandbox.update_deal(deal_id, {"TITLE": "Bathroom"})
    sandbox.add_lead({"TITLE": "Lead"})
    sandbox.wait_delivered()
    assert [dict(p["form"])["event"] for p in receiver.posts] == ["ONCRMDEALADD"]


def test_failed_delivery_is_recorded_and_not_retried(sandbox: Bitrix24Sandbox) -> None:
    dead = LoopbackServer(Flask("dead")).start()
    url = f"{dead.url}/hook"
    dead.stop()  # nothing listens on that port any more
    sandbox.subscribe("ONCRMDEALADD", url)
    sandbox.add_deal({"TITLE": "Kitchen"})
    sandbox.wait_delivered()
    [delivery] = sandbox.deliveries
    assert delivery["status"] is None and "error" in delivery


def test_post_event_can_forge_the_token_and_drop_keys(
    sandbox: Bitrix24Sandbox, receiver: Receiver
) -> None:
    answer = sandbox.post_event(
        "ONCRMDEALUPDATE",
        7,
        receiver.url,
        application_token="forged",
        drop_keys=("data[FIELDS][ID]",),
    )
    assert answer.status_code == 200
    form = dict(receiver.posts[0]["form"])
    assert form["auth[application_token]"] == "forged"
    assert set(form) == EVENT_KEYS - {"data[FIELDS][ID]"}


# --- stages, statuses, errors ----------------------------------------------------------------


def test_stage_semantics_follow_a_c1_pipeline(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen", "STAGE_ID": "C1:MEETING"})
    assert rest(sandbox, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "C1:APOLOGY"}})
    deal = rest(sandbox, "crm.deal.get", {"id": deal_id}).json()["result"]
    assert (deal["STAGE_ID"], deal["STAGE_SEMANTIC_ID"], deal["CLOSED"]) == ("C1:APOLOGY", "F", "Y")
    rest(
        sandbox, "crm.deal.update", {"id": deal_id, "fields": {"STAGE_ID": "WON"}}
    )  # other pipeline
    assert sandbox.deals[deal_id]["STAGE_ID"] == "C1:APOLOGY"
    statuses = rest(sandbox, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}}).json()
    assert [(s["STATUS_ID"], s["SEMANTICS"]) for s in statuses["result"]] == [
        ("C1:NEW", None),
        ("C1:MEETING", None),
        ("C1:WON", "S"),
        ("C1:LOSE", "F"),
        ("C1:APOLOGY", "F"),
    ]
    assert statuses["result"][3]["EXTRA"] == {"SEMANTICS": "failure", "COLOR": "#FF5752"}
    types = rest(sandbox, "crm.status.entity.types", {}).json()["result"]
    repair = next(t for t in types if t["ID"] == "DEAL_STAGE_1")
    assert (repair["PREFIX"], repair["SEMANTIC_INFO"]["FINAL_UNSUCCESS_FIELD"]) == ("C1", "C1:LOSE")


def test_default_general_pipeline_and_lead_statuses(sandbox: Bitrix24Sandbox) -> None:
    general = rest(sandbox, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}}).json()
    assert [s["STATUS_ID"] for s in general["result"]] == [
        *("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE"),
        *("WON", "LOSE", "APOLOGY"),
    ]
    lead_id = sandbox.add_lead({"TITLE": "Call me", "STATUS_ID": "JUNK"})
    lead = rest(sandbox, "crm.lead.get", {"id": lead_id}).json()["result"]
    assert (lead["STATUS_ID"], lead["STATUS_SEMANTIC_ID"]) == ("JUNK", "F")


def test_list_filters_prefixes_and_start_minus_one(sandbox: Bitrix24Sandbox) -> None:
    ids = [sandbox.add_deal({"TITLE": f"D{n}", "OPPORTUNITY": n * 100}) for n in range(1, 6)]
    flt = {">=OPPORTUNITY": 200, "<OPPORTUNITY": 500, "!ID": ids[2]}
    page = rest(sandbox, "crm.deal.list", {"filter": flt, "select": ["ID"]}).json()
    assert (page["result"], page["total"]) == ([{"ID": str(ids[1])}, {"ID": str(ids[3])}], 2)
    fast = rest(sandbox, "crm.deal.list", {"filter": {"@ID": ids[:2]}, "start": -1}).json()
    assert [d["ID"] for d in fast["result"]] == [str(ids[0]), str(ids[1])]
    assert fast["total"] == 0 and "next" not in fast


def test_documented_errors(sandbox: Bitrix24Sandbox) -> None:
    missing = rest(sandbox, "crm.deal.get", {"id": 999})
    assert (missing.status_code, missing.json()) == (
        400,
        {"error": "", "error_description": "Not found"},
    )
    unknown = rest(sandbox, "crm.nothing.here", {})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    comment = rest(sandbox, "crm.timeline.comment.add", {"FIELDS": {"COMMENT": "x"}})
    assert (comment.status_code, comment.json()["error"]) == (400, "100")  # lowercase only
    assert rest(sandbox, "tasks.task.get", {"taskId": 404}).json()["result"] == []


def test_wrong_webhook_code_is_401(sandbox: Bitrix24Sandbox, b24: Bitrix) -> None:
    url = sandbox.webhook_url.replace("/sandbox/", "/wrong-code/")
    answer = requests.post(url + "crm.deal.list", json={}, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "NO_AUTH_FOUND",
        "error_description": "Wrong authorization data",
    }


def test_timeline_comment_and_user_get(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    fields = {"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal", "COMMENT": "Called the client"}
    comment_id = rest(sandbox, "crm.timeline.comment.add", {"fields": fields}).json()["result"]
    assert isinstance(comment_id, int)
    [stored] = sandbox.comments_for("deal", deal_id)
    assert (stored["ID"], stored["COMMENT"], stored["AUTHOR_ID"]) == (
        str(comment_id),
        "Called the client",
        "1",
    )
    users = rest(sandbox, "user.get", {"filter": {"ID": 3}}).json()
    assert [(u["ID"], u["NAME"], u["EMAIL"]) for u in users["result"]] == [
        ("3", "Anna", "anna@example.com")
    ]


def test_userfields_and_lead_multifields(sandbox: Bitrix24Sandbox) -> None:
    items = sandbox.add_userfield(
        "deal", "UF_CRM_REASON", "enumeration", "Reason", ["Price", "Time"]
    )
    fields = rest(sandbox, "crm.deal.fields", {}).json()["result"]
    reason = fields["UF_CRM_REASON"]
    assert (reason["isDynamic"], reason["title"], reason["listLabel"]) == (
        True,
        "UF_CRM_REASON",
        "Reason",
    )
    assert reason["items"] == items and [i["VALUE"] for i in items] == ["Price", "Time"]
    assert fields["STAGE_ID"]["statusType"] == "DEAL_STAGE"
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    rest(sandbox, "crm.deal.update", {"id": deal_id, "fields": {"UF_CRM_REASON": items[1]["ID"]}})
    assert sandbox.deals[deal_id]["UF_CRM_REASON"] == items[1]["ID"]
    phone = {"VALUE": "+79990001122", "VALUE_TYPE": "WORK"}
    lead_id = rest(sandbox, "crm.lead.add", {"fields": {"TITLE": "Call", "PHONE": [phone]}}).json()
    lead = rest(sandbox, "crm.lead.get", {"id": lead_id["result"]}).json()["result"]
    assert lead["HAS_PHONE"] == "Y" and lead["HAS_EMAIL"] == "N"
    assert [(p["VALUE"], p["TYPE_ID"]) for p in lead["PHONE"]] == [("+79990001122", "PHONE")]


def test_batch_links_a_result_into_the_next_command(sandbox: Bitrix24Sandbox) -> None:
    deal_id = sandbox.add_deal({"TITLE": "Kitchen"})
    sandbox.add_deal({"TITLE": "Other"})
    cmd = {"d": f"crm.deal.get?id={deal_id}"}
    cmd["same"] = "crm.deal.list?filter[ID]=$result[d][ID]&select[]=TITLE"
    body = rest(sandbox, "batch", {"cmd": cmd}).json()["result"]
    assert body["result"]["same"] == [{"TITLE": "Kitchen"}]
