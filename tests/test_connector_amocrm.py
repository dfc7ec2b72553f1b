"""The amoCRM connector: wire shapes and error classification with ``responses``, then reads
and look-ups against the sandbox over loopback.

Each fixture names the amoCRM page its shape comes from (as quoted in
shared/reference/amocrm.md); D: = https://www.amocrm.ru/developers/content/.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
import responses

from bridge import config, mappings
from bridge.actions import AddComment, CreateTask, MoveStage, Reassign, UpdateFields
from bridge.crms.amocrm import AmoCRM
from bridge.crms.amocrm.connector import AmoCRMConnector, marker
from bridge.crms.connector import READ_RETRY_DELAYS
from bridge.errors import PermanentError, TenantPaused, TransientError
from bridge.masking import redact
from bridge.models import Action, Event, LookupQuery, Record, RecordRef
from tests.amocrm_env import (
    IVANOVA,
    MEETING,
    ORDER_NEW,
    ORDERS,
    REQUEST_NEW,
    REQUESTS,
    SMIRNOV,
    AmoBridge,
    lead,
)
from tests.bitrix24_env import ROOT

BASE = "https://example.amocrm.ru"


@pytest.fixture
def conn(redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> AmoCRMConnector:
    """Remarka's connector on a long-lived token, for ``responses`` fixtures."""
    monkeypatch.setenv("AMO_TOKEN", "t0k3n")
    cfg = config.TenantConfig(
        crm="amocrm",
        connection={
            "base_url": BASE,
            "account_id": 28805383,
            "auth": "long_lived",
            "long_lived_token_env": "AMO_TOKEN",
            "webhook_secret_env": "AMO_HOOK",
        },
        regulations=[],
    )
    mapping = mappings.load(
        ROOT / "config" / "mappings" / "remarka-amocrm.yaml", AmoCRM.mapping_path()
    )
    tenant = config.Tenant("remarka", cfg, mapping, [], config.calendar(cfg), Path("."))
    connector = AmoCRMConnector(tenant, shared=redis_conn)
    connector.transport.sleep = lambda _s: None
    return connector


# D:crm_platform/leads-api, «Получение сделки по ID», example with ?with=loss_reason,contacts
LEAD = {
    "id": 3912171,
    "name": "Ремонт кухни",
    "price": 12,
    "responsible_user_id": 5001,
    "group_id": 0,
    "status_id": 143,
    "pipeline_id": 3104455,
    "loss_reason_id": 4203748,
    "created_by": 504141,
    "updated_by": 504141,
    "created_at": 1585299171,
    "updated_at": 1590683337,
    "closed_at": 1590683337,
    "closest_task_at": None,
    "is_deleted": False,
    "custom_fields_values": [
        # read shape of D:crm_platform/custom-fields (field_name/field_type are read-only)
        {
            "field_id": 294472,
            "field_name": "Цель",
            "field_code": None,
            "field_type": "text",
            "values": [{"value": "Замер"}],
        },
        {
            "field_id": 294471,
            "field_name": "Следующий контакт",
            "field_code": None,
            "field_type": "date_time",
            "values": [{"value": 1700000000}],
        },
    ],
    "score": None,
    "account_id": 28805383,
    "_embedded": {
        "tags": [{"id": 100667, "name": "тест", "color": None}],
        "loss_reason": [{"id": 4203748, "name": "Пропала потребность", "sort": 100000}],
        "companies": [{"id": 10971463}],
        "contacts": [{"id": 10971465, "is_main": True}],
    },
}


@responses.activate
def test_a_lead_is_read_by_the_mapping(conn: AmoCRMConnector) -> None:
    responses.get(f"{BASE}/api/v4/leads/3912171", json=LEAD)
    record = conn.fetch(RecordRef("deal", "3912171"))
    assert (record.kind, record.stage, record.outcome) == ("deal", "143", "lost")
    assert (record.title, record.amount, record.responsible) == ("Ремонт кухни", 12.0, "5001")
    assert record.fields["refusal_reason"] == "Пропала потребность"
    assert record.fields["next_contact_goal"] == "Замер"
    assert record.fields["next_contact_at"] == "2023-11-15T01:13:20+03:00"  # tenant's zone
    assert record.fields["contact_id"] == "10971465"
    assert record.fields["created_at"] == "2020-03-27T11:52:51+03:00"
    sent = responses.calls[0].request
    assert sent.url.endswith("?with=loss_reason%2Ccontacts")
    assert sent.headers["Authorization"] == "Bearer t0k3n"


@responses.activate
def test_a_missing_lead_is_204_and_permanent(conn: AmoCRMConnector) -> None:
    # D:crm_platform/leads-api: 204 «Сделка с указанным ID не существует», no body
    responses.get(f"{BASE}/api/v4/leads/1", status=204)
    with pytest.raises(PermanentError, match=r"not found \(204\)"):
        conn.fetch(RecordRef("deal", "1"))


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        # D:crm_platform/error-codes and Kommo's status-code page (reference §3.2-3.3)
        (402, {"title": "Payment Required", "status": 402}, PermanentError, "account unpaid"),
        (403, "<html><body>403 Forbidden</body></html>", PermanentError, "an HTML page"),
        (503, {"title": "Service Unavailable", "status": 503}, TransientError, "HTTP 503"),
        (
            400,
            {
                "validation-errors": [
                    {
                        "request_id": "0",
                        "errors": [
                            {
                                "code": "NotSupportedChoice",
                                "path": "custom_fields_values.0.field_id",
                                "detail": "The value you selected is not a valid choice.",
                            }
                        ],
                    }
                ],
                "title": "Bad Request",
                "type": "https://httpstatus.es/400",
                "status": 400,
                "detail": "Request validation failed",
            },
            PermanentError,
            "custom_fields_values.0.field_id: NotSupportedChoice",
        ),
        (
            400,  # amocrm/amocrm-api-php#88
            {
                "errors": {"11062353": "Loss reason can be specified only for lost lead"},
                "title": "Bad Request",
                "status": 400,
                "detail": "Invalid request body",
            },
            PermanentError,
            "11062353: Loss reason can be specified only for lost lead",
        ),
    ],
)
@responses.activate
def test_error_answers_are_typed(
    conn: AmoCRMConnector, status: int, body: Any, error: type[Exception], text: str
) -> None:
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.get(f"{BASE}/api/v4/leads/7", status=status, **kwargs)
    with pytest.raises(error, match=text):
        conn.fetch(RecordRef("deal", "7"))
    # a read that met a 5xx is asked again at once; any other answer is final for the call
    asked = 1 + len(READ_RETRY_DELAYS) if status >= 500 else 1
    assert len(responses.calls) == asked


@responses.activate
def test_a_read_that_met_a_5xx_is_asked_again_and_a_write_never(conn: AmoCRMConnector) -> None:
    slept: list[float] = []
    conn.transport.sleep = slept.append
    responses.get(f"{BASE}/api/v4/leads/3912171", status=502, body="<html>Bad Gateway</html>")
    responses.get(f"{BASE}/api/v4/leads/3912171", json=LEAD)
    assert conn.fetch(RecordRef("deal", "3912171")).title == "Ремонт кухни"
    assert slept == [READ_RETRY_DELAYS[0]]
    responses.patch(f"{BASE}/api/v4/leads/3912171", status=502, body="<html>Bad Gateway</html>")
    with pytest.raises(TransientError):
        conn.api.call("PATCH", "/api/v4/leads/3912171", body={"price": 1})
    assert [c.request.method for c in responses.calls].count("PATCH") == 1


@responses.activate
def test_a_short_429_is_waited_out_inside_the_call(conn: AmoCRMConnector) -> None:
    # Kommo's example: {"title": "Too Many Requests", ..., "retry_after": 300}; here 2 s
    slept: list[float] = []
    conn.transport.sleep = slept.append
    too_many = {"title": "Too Many Requests", "status": 429, "retry_after": 2}
    responses.get(f"{BASE}/api/v4/leads/3912171", status=429, json=too_many)
    responses.get(f"{BASE}/api/v4/leads/3912171", json=LEAD)
    assert conn.fetch(RecordRef("deal", "3912171")).title == "Ремонт кухни"
    assert slept == [2.0]


@responses.activate
def test_a_long_429_goes_back_to_rq_at_once(conn: AmoCRMConnector) -> None:
    too_many = {"title": "Too Many Requests", "status": 429, "retry_after": 300}
    responses.get(f"{BASE}/api/v4/leads/1", status=429, json=too_many)
    with pytest.raises(TransientError, match="retry after 300s"):
        conn.fetch(RecordRef("deal", "1"))
    assert len(responses.calls) == 1


@responses.activate
def test_an_html_429_without_retry_after_waits_a_second(conn: AmoCRMConnector) -> None:
    # a 429 may be an nginx page without JSON (amocrm/amocrm-api-php#517)
    slept: list[float] = []
    conn.transport.sleep = slept.append
    responses.get(f"{BASE}/api/v4/leads/1", status=429, body="<html>429</html>")
    responses.get(f"{BASE}/api/v4/leads/1", json={**LEAD, "id": 1})
    conn.fetch(RecordRef("deal", "1"))
    assert slept == [1.0]


@responses.activate
def test_a_timeout_is_transient(conn: AmoCRMConnector) -> None:
    responses.get(f"{BASE}/api/v4/leads/1", body=requests.Timeout("read timed out"))
    with pytest.raises(TransientError, match="Timeout"):
        conn.fetch(RecordRef("deal", "1"))


@responses.activate
def test_a_refused_long_lived_token_pauses_the_tenant(conn: AmoCRMConnector) -> None:
    unauthorized = {"title": "Unauthorized", "status": 401, "detail": "Invalid user name"}
    responses.get(f"{BASE}/api/v4/leads/1", status=401, json=unauthorized)
    with pytest.raises(TenantPaused, match="long-lived token"):
        conn.fetch(RecordRef("deal", "1"))
    with pytest.raises(TenantPaused):
        conn.fetch(RecordRef("deal", "1"))
    assert len(responses.calls) == 1  # paused: the second call never left


SINCE = datetime(2025, 10, 27, 7, 0, tzinfo=UTC)  # when an action was claimed


def plan(record: Record) -> list[Action]:
    due = datetime(2025, 10, 27, 7, 30, tzinfo=UTC)
    task = CreateTask(title="Позвонить", description="По КП", responsible="5001", deadline=due)
    return [
        Action("a" * 64, "r1", record.ref, task),
        Action("b" * 64, "r1", record.ref, replace(task, responsible="5004")),
        Action("c" * 64, "r2", record.ref, AddComment("Постоянный клиент")),
        Action("d" * 64, "r3", record.ref, UpdateFields({"next_contact_goal": "Х"})),
        Action("e" * 64, "r3", record.ref, MoveStage("estimate")),
        Action("f" * 64, "r4", record.ref, Reassign("5004")),
    ]


def answer_plan_writes() -> None:
    """The account's answers to the plan's writes and to the look-ups they need."""
    # D:crm_platform/tasks-api, events-and-notes, leads-api, leads_pipelines, custom-fields
    tasks = {
        "_embedded": {
            "tasks": [{"id": 11, "request_id": "a" * 12}, {"id": 12, "request_id": "b" * 12}]
        }
    }
    responses.post(f"{BASE}/api/v4/tasks", json=tasks)
    notes = {"_embedded": {"notes": [{"id": 21, "entity_id": 7, "request_id": "c" * 12}]}}
    responses.post(f"{BASE}/api/v4/leads/notes", json=notes)
    leads = {"_embedded": {"leads": [{"id": 7, "updated_at": 1700000000}]}}
    responses.patch(f"{BASE}/api/v4/leads", json=leads)
    fields = {"_embedded": {"custom_fields": [{"id": 294472, "name": "Цель", "type": "text"}]}}
    responses.get(f"{BASE}/api/v4/leads/custom_fields", json=fields)
    statuses = [{"id": s, "name": str(s)} for s in (31044552, 31044553, 142, 143)]
    pipes = {"_embedded": {"pipelines": [{"id": 3104455, "_embedded": {"statuses": statuses}}]}}
    responses.get(f"{BASE}/api/v4/leads/pipelines", json=pipes)


@responses.activate
def test_a_plan_is_one_request_per_kind_of_write(conn: AmoCRMConnector) -> None:
    answer_plan_writes()
    record = Record("deal", "7", "amocrm", stage="meeting", responsible="5001")
    outcomes = conn.execute(record, plan(record))
    assert {o.status for o in outcomes.values()} == {"done"}
    assert outcomes["a" * 64].result == {"task_id": "11"}
    writes = [c.request for c in responses.calls if c.request.method != "GET"]
    assert [(w.method, w.path_url) for w in writes] == [
        ("POST", "/api/v4/tasks"),
        ("POST", "/api/v4/leads/notes"),
        ("PATCH", "/api/v4/leads"),
    ]
    sent_tasks, sent_notes, patch = (json.loads(w.body) for w in writes)
    assert sent_tasks[0] == {
        "task_type_id": 1,
        "text": f"Позвонить\nПо КП\n[#bridge:{'a' * 12}]",
        "complete_till": 1761550200,  # int unix seconds
        "entity_id": 7,
        "entity_type": "leads",
        "responsible_user_id": 5001,
        "request_id": "a" * 12,
    }
    assert sent_tasks[1]["responsible_user_id"] == 5004
    assert sent_notes == [
        {
            "entity_id": 7,
            "note_type": "common",
            "params": {"text": "Постоянный клиент"},
            "request_id": "c" * 12,
        }
    ]
    assert patch == [
        {
            "id": 7,
            "custom_fields_values": [{"field_id": 294472, "values": [{"value": "Х"}]}],
            "status_id": 31044553,
            "pipeline_id": 3104455,
            "responsible_user_id": 5004,
        }
    ]
    assert outcomes["d" * 64].result == {"updated_at": 1700000000}


@responses.activate
def test_the_writes_of_several_leads_go_in_one_request_each(conn: AmoCRMConnector) -> None:
    answer_plan_writes()
    seven = Record("deal", "7", "amocrm", stage="meeting", responsible="5001")
    eight = Record("deal", "8", "amocrm", stage="meeting", responsible="5001")
    ahead = [
        Action("g" * 64, "r1", eight.ref, AddComment("Второй")),
        Action("h" * 64, "r3", eight.ref, MoveStage("estimate")),
    ]
    outcomes = conn.execute_many([(seven, plan(seven)[2:4]), (eight, ahead)])
    writes = [c.request for c in responses.calls if c.request.method != "GET"]
    assert [(w.method, w.path_url) for w in writes] == [
        ("POST", "/api/v4/leads/notes"),
        ("PATCH", "/api/v4/leads"),
    ]
    notes, patch = (json.loads(w.body) for w in writes)
    assert [n["entity_id"] for n in notes] == [7, 8]
    assert [item["id"] for item in patch] == [7, 8]
    assert len(outcomes) == 4


@responses.activate
def test_a_failed_write_fails_only_its_own_actions(conn: AmoCRMConnector) -> None:
    responses.post(f"{BASE}/api/v4/tasks", status=503, json={"title": "Unavailable"})
    responses.post(f"{BASE}/api/v4/leads/notes", json={"_embedded": {"notes": [{"id": 1}]}})
    record = Record("deal", "7", "amocrm")
    actions = plan(record)[:3]
    outcomes = conn.execute(record, actions)
    assert [outcomes[a.key].status for a in actions] == ["retry", "retry", "done"]


@responses.activate
def test_lists_follow_next_links_on_the_accounts_own_address(conn: AmoCRMConnector) -> None:
    # D:crm_platform/leads-api: _links.next.href; the token never goes to another host
    page1 = {
        "_links": {"next": {"href": "https://elsewhere.example/api/v4/tasks?page=2&limit=250"}},
        "_embedded": {"tasks": [{"id": 1, "text": "чужая"}]},
    }
    page2 = {
        "_embedded": {
            "tasks": [
                {"id": 2, "text": f"Позвонить\n{marker(plan(Record('deal', '7', 'amocrm'))[0])}"}
            ]
        }
    }
    responses.get(f"{BASE}/api/v4/tasks", json=page1)
    responses.get(f"{BASE}/api/v4/tasks", json=page2)
    record = Record("deal", "7", "amocrm")
    assert conn.find_done(record, plan(record)[0], SINCE) == {"task_id": "2"}
    assert "filter%5Bentity_id%5D%5B%5D=7" in responses.calls[0].request.url
    assert responses.calls[1].request.url.startswith(f"{BASE}/api/v4/tasks?page=2")


@responses.activate
def test_an_empty_task_list_is_204(conn: AmoCRMConnector) -> None:
    responses.get(f"{BASE}/api/v4/tasks", status=204)
    record = Record("deal", "7", "amocrm")
    assert conn.find_done(record, plan(record)[0], SINCE) is None


@responses.activate
def test_earlier_tasks_of_several_leads_are_looked_for_in_one_listing(
    conn: AmoCRMConnector,
) -> None:
    # D:crm_platform/tasks-api: filter[entity_id][] takes several leads
    seven, eight = Record("deal", "7", "amocrm"), Record("deal", "8", "amocrm")
    made, not_made = plan(seven)[0], replace(plan(eight)[0], key="9" * 64, ref=eight.ref)
    listing = {
        "_embedded": {"tasks": [{"id": 5, "entity_id": 7, "text": f"Позвонить\n{marker(made)}"}]}
    }
    responses.get(f"{BASE}/api/v4/tasks", json=listing)
    found = conn.find_done_many([(seven, made, SINCE), (eight, not_made, SINCE)])
    assert found == {made.key: {"task_id": "5"}, not_made.key: None}
    [call] = responses.calls
    assert "filter%5Bentity_id%5D%5B%5D=7&filter%5Bentity_id%5D%5B%5D=8" in call.request.url


@responses.activate
def test_a_listing_that_fails_makes_its_actions_wait_not_the_others(
    conn: AmoCRMConnector,
) -> None:
    responses.get(f"{BASE}/api/v4/tasks", status=503, json={"title": "Unavailable"})
    notes = {"_embedded": {"notes": [{"id": 3, "params": {"text": "Постоянный клиент"}}]}}
    responses.get(f"{BASE}/api/v4/leads/7/notes", json=notes)
    record = Record("deal", "7", "amocrm")
    task, comment = plan(record)[0], plan(record)[2]
    found = conn.find_done_many([(record, task, SINCE), (record, comment, SINCE)])
    assert isinstance(found[task.key], TransientError)
    assert found[comment.key] == {"note_id": "3"}


# -- against the sandbox ----------------------------------------------------------------


def test_the_client_email_comes_from_the_main_contact(amo: AmoBridge) -> None:
    # D:crm_platform/contacts-api: EMAIL is a multitext field of the contact
    amo.sandbox.add_contact(9001, "Анна", email="anna@example.com", phone="+79991234567")
    body = lead("Ремонт", MEETING, _embedded={"contacts": [{"id": 9001, "is_main": True}]})
    lead_id = amo.sandbox.add_lead(body)
    conn = amo.connector()
    record = conn.fetch(RecordRef("deal", str(lead_id)))
    assert conn.contact_email(record) == "anna@example.com"
    assert conn.user_email(str(IVANOVA)) == "user5001@remarka.example"
    assert conn.user_email("424242") is None  # 204


def test_requests_and_orders_are_told_apart_by_pipeline(make_amo_bridge: Any) -> None:
    amo = make_amo_bridge(("autoparts",), events=[])
    sb = amo.sandboxes["autoparts"]
    sb.add_contact(501, "Клиент")
    with_contact = {"_embedded": {"contacts": [{"id": 501, "is_main": True}]}}
    orders = [
        sb.add_lead(lead(f"Заказ {n}", ORDER_NEW, SMIRNOV, ORDERS, **with_contact))
        for n in range(2)
    ]
    request = sb.add_lead(lead("Фильтры", REQUEST_NEW, SMIRNOV, REQUESTS, **with_contact))
    conn = amo.connector("autoparts")
    record = conn.fetch(RecordRef("lead", str(request)))
    assert (record.kind, record.stage) == ("lead", "new")
    query = LookupQuery("deal", (("contact_id", "501"),), exclude=record.ref)
    assert [r.id for r in conn.find(query)] == [str(i) for i in orders]
    assert conn.find(LookupQuery("deal", (("contact_id", ""),))) == []
    assert [r.id for r in conn.list_open("lead")] == [str(request)]


def test_open_leads_are_listed_page_by_page(amo: AmoBridge) -> None:
    ids = [amo.sandbox.add_lead(lead(f"Ремонт {n}", MEETING)) for n in range(260)]
    amo.sandbox.update_lead(ids[0], {"status_id": 143})
    found = [int(r.id) for r in amo.connector().list_open("deal")]
    assert found == ids[1:]
    pages = [r for r in amo.sandbox.requests_log if r["path"] == "/api/v4/leads"]
    assert len(pages) == 2


def test_hook_secrets_and_bearer_tokens_are_masked() -> None:
    line = '"POST /hooks/amocrm/remarka/remarka-hook-s3cr3t HTTP/1.1" 200 -'
    assert redact(line) == '"POST /hooks/amocrm/remarka/*** HTTP/1.1" 200 -'
    assert redact("Authorization: Bearer eyJ0.eyJq.c2ln") == "Authorization: Bearer ***"


# D:crm_platform/events-and-notes, «Получение примечания по ID»: a call note; params as the page
# lists them for call_in / call_out (uniq, duration, source, link, phone, call_status)
CALL_NOTE = {
    "id": 76787983,
    "entity_id": 167353,
    "created_by": 504141,
    "updated_by": 504141,
    "created_at": 1588841241,
    "updated_at": 1588841241,
    "responsible_user_id": 504141,
    "group_id": 0,
    "note_type": "call_out",
    "params": {
        "uniq": "8f52d38a-5fb3-406d-93a3-a4832dc28f8b",
        "duration": 0,
        "source": "onlinePBX",
        "link": "https://example.com/record.mp3",
        "phone": "+79999999999",
        "call_status": 6,
    },
    "account_id": 28805383,
}
# D:crm_platform/tasks-api, «Получение задачи по ID», completed with a result
DONE_TASK = {
    "id": 4745251,
    "entity_id": 167353,
    "entity_type": "leads",
    "task_type_id": 2,
    "text": "Встреча на объекте",
    "is_completed": True,
    "result": {"text": "Клиент думает, перезвонить в пятницу"},
    "complete_till": 1588885140,
}


@responses.activate
def test_a_call_note_is_a_completed_call_with_its_outcome(conn: AmoCRMConnector) -> None:
    responses.get(f"{BASE}/api/v4/leads/notes/76787983", json=CALL_NOTE)
    event = Event(
        "remarka",
        "amocrm",
        "activity.created",
        RecordRef("", "167353"),
        datetime(2025, 10, 22, tzinfo=UTC),
        source="leads[note]",
        subject="76787983",
    )
    assert conn.activity_of(event) == {
        "type": "call",
        "direction": "outgoing",
        "completed": True,
        "outcome": "no_answer",
    }


@responses.activate
def test_a_completed_task_is_a_completed_contact(conn: AmoCRMConnector) -> None:
    responses.get(f"{BASE}/api/v4/tasks/4745251", json=DONE_TASK)
    event = Event(
        "remarka",
        "amocrm",
        "activity.updated",
        RecordRef("", "167353"),
        datetime(2025, 10, 22, tzinfo=UTC),
        source="task[update]",
        subject="4745251",
    )
    activity = conn.activity_of(event)
    assert activity is not None
    assert (activity["type"], activity["completed"]) == ("meeting", True)
    assert activity["result"] == "Клиент думает, перезвонить в пятницу"


# D:crm_platform/events-and-notes, «Список примечаний по типу сущности»: the page's example
# answer to GET /api/v4/leads/notes with filter[id] naming two notes («Можно передать как один
# ID, так и массив из нескольких ID»)
NOTES_BY_ID = {
    "_page": 1,
    "_links": {
        "self": {
            "href": "https://example.amocrm.ru/api/v4/leads/notes?filter%5Bid%5D%5B0%5D=42709325"
            "&filter%5Bid%5D%5B1%5D=42709842&page=1&limit=50"
        },
    },
    "_embedded": {
        "notes": [
            {
                "id": 42709325,
                "entity_id": 26050861,
                "created_by": 940088,
                "updated_by": 940088,
                "created_at": 1540407495,
                "updated_at": 1540408317,
                "responsible_user_id": 939801,
                "group_id": 0,
                "note_type": "common",
                "params": {"text": "Текст примечания"},
                "account_id": 17079858,
                "_links": {
                    "self": {
                        "href": "https://example.amocrm.ru/api/v4/leads/26050861/notes/42709325"
                    }
                },
            },
            {
                "id": 42709842,
                "entity_id": 26053794,
                "created_by": 939801,
                "updated_by": 939801,
                "created_at": 1548280113,
                "updated_at": 1548280115,
                "responsible_user_id": 939801,
                "group_id": 0,
                "note_type": "attachment",
                "params": {
                    "is_drive_attachment": True,
                    "text": "Снимок экрана 2022-12-12 в 20.11.45 (1).jpg",
                    "original_name": "Снимок экрана 2022-12-12 в 20.11.45 (1).jpg",
                    "file_uuid": "6905db7c-3a29-4d30-8953-bac68c05e8e8",
                    "version_uuid": "4e316440-4122-4cad-b121-9709882b4cc1",
                    "file_name": "Snimok_ekrana_2022-12-12_v_20.11.45_1_.jpg",
                },
                "account_id": 17079858,
                "_links": {
                    "self": {
                        "href": "https://example.amocrm.ru/api/v4/leads/26053794/notes/42709842"
                    }
                },
            },
        ]
    },
}


def activity_event(lead_id: str, source: str, subject: str) -> Event:
    """An activity event as a note or task hook gives it: the lead's id, no kind."""
    at = datetime(2025, 10, 22, tzinfo=UTC)
    ref = RecordRef("", lead_id)
    return Event("remarka", "amocrm", "activity.created", ref, at, source=source, subject=subject)


@responses.activate
def test_a_batchs_notes_and_tasks_are_listed_once_each_by_id(conn: AmoCRMConnector) -> None:
    # D:crm_platform/tasks-api, «Список задач»: filter[id] takes one id or an array too
    responses.get(f"{BASE}/api/v4/leads/notes", json=NOTES_BY_ID)
    responses.get(f"{BASE}/api/v4/tasks", json={"_embedded": {"tasks": [DONE_TASK]}})
    events = [
        activity_event("26050861", "leads[note]", "42709325"),
        activity_event("26053794", "leads[note]", "42709842"),
        activity_event("167353", "task[update]", "4745251"),
    ]
    with conn.reading_batch():  # as the pipeline reads a batch
        assert conn.subject_owners(events) == [e.ref for e in events]  # fetch_many's kind
        activities = [conn.activity_of(e) for e in events]
    asked = {
        urlsplit(c.request.url).path: parse_qs(urlsplit(c.request.url).query)["filter[id][]"]
        for c in responses.calls
    }
    assert asked == {
        "/api/v4/leads/notes": ["42709325", "42709842"],
        "/api/v4/tasks": ["4745251"],
    }
    other = {"type": "other", "direction": "", "completed": False}
    assert activities[:2] == [other, other]  # a common note and an attachment: no calls
    assert activities[2] is not None
    assert (activities[2]["type"], activities[2]["completed"]) == ("meeting", True)
