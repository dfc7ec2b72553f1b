"""The amoCRM sandbox over real HTTP: OAuth rotation, documented shapes, errors and webhooks.

Expected shapes come from /work/shared/reference/amocrm.md, which quotes
https://www.amocrm.ru/developers/content/oauth/step-by-step (tokens),
https://www.amocrm.ru/developers/content/crm_platform/leads-api (leads, 204),
https://www.amocrm.ru/developers/content/crm_platform/custom-fields (write shape),
https://www.amocrm.ru/developers/content/crm_platform/error-codes (validation errors),
https://www.amocrm.ru/developers/content/crm_platform/tasks-api (tasks) and
https://www.amocrm.ru/developers/content/crm_platform/webhooks-format (hook bodies).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, request

from bridge.crms.amocrm.sandbox import AmoCRMSandbox
from bridge.formdata import parse_pairs
from bridge.sandbox.server import LoopbackServer

ANNA = 504141
SALES = 3104455
FIRST, OFFER = 7039101, 7039102
NO_NEED = 4203748
SOURCE, SITE, CALL = 66339, 139517, 139518
COMMENT = 427183


class Receiver:
    """A tiny handler server recording what the account posts; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[dict[str, Any]] = []
        self.threads: list[str] = []
        app = Flask(__name__)
        app.add_url_rule("/hook/<secret>", "hook", self._hook, methods=["POST"])
        self.server = LoopbackServer(app).start()
        self.url = f"{self.server.url}/hook/s3cr3t"

    def _hook(self, secret: str) -> tuple[str, int]:
        pairs = list(request.form.items(multi=True))
        self.posts.append({"content_type": request.mimetype, "pairs": pairs})
        self.threads.append(threading.current_thread().name)
        return "", self.status


@pytest.fixture
def sandbox() -> Iterator[AmoCRMSandbox]:
    """A started account with a user, a pipeline, a loss reason and two custom fields."""
    sb = AmoCRMSandbox().start()
    sb.add_user(ANNA, "Anna", "anna@example.com")
    sb.add_pipeline(SALES, "Sales", [(FIRST, "First contact"), (OFFER, "Offer")])
    sb.add_loss_reason(NO_NEED, "Пропала потребность")
    sb.add_custom_field(SOURCE, "Источник", "select", [(SITE, "Сайт"), (CALL, "Звонок")])
    sb.add_custom_field(COMMENT, "Комментарий")
    yield sb
    sb.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A handler server on loopback."""
    rec = Receiver()
    yield rec
    rec.server.stop()


def token_request(sb: AmoCRMSandbox, **fields: str) -> requests.Response:
    """POST /oauth2/access_token with the integration's credentials plus ``fields``."""
    body = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    body["redirect_uri"] = "https://bridge.example/oauth/amocrm"
    return requests.post(f"{sb.base_url}/oauth2/access_token", json=body | fields, timeout=5)


@pytest.fixture
def auth(sandbox: AmoCRMSandbox) -> dict[str, str]:
    """Authorization header of a token from the code exchange (owner: the admin, id 1)."""
    reply = token_request(sandbox, grant_type="authorization_code", code=sandbox.issue_code())
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def api(sb: AmoCRMSandbox, method: str, path: str, headers: dict[str, str], **kw: Any):
    """One API v4 call."""
    return requests.request(method, f"{sb.base_url}/api/v4{path}", headers=headers, timeout=5, **kw)


# --- OAuth -----------------------------------------------------------------------------------


def test_code_exchange_then_refresh_rotates_pair_and_old_refresh_token_is_refused(
    sandbox: AmoCRMSandbox,
) -> None:
    code = sandbox.issue_code()
    first = token_request(sandbox, grant_type="authorization_code", code=code)
    assert first.status_code == 200
    pair = first.json()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 86400
    assert {"server_time", "access_token", "refresh_token"} <= set(pair)
    # A code is single-use.
    again = token_request(sandbox, grant_type="authorization_code", code=code)
    assert again.status_code == 400

    second = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["access_token"] != pair["access_token"]
    assert new["refresh_token"] != pair["refresh_token"]

    reused = token_request(sandbox, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["hint"] == "Token has been revoked"
    assert reused.json()["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
    # The old access token lives until it expires; the new refresh token works once.
    old_auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api(sandbox, "GET", "/account", old_auth).status_code == 200
    third = token_request(sandbox, grant_type="refresh_token", refresh_token=new["refresh_token"])
    assert third.status_code == 200
    assert [(e["refresh_token"], e["ok"]) for e in sandbox.refresh_log] == [
        (pair["refresh_token"], True),
        (pair["refresh_token"], False),
        (new["refresh_token"], True),
    ]


def test_expired_or_missing_access_token_gets_401(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    assert api(sandbox, "GET", "/leads/pipelines", auth).status_code == 200
    assert api(sandbox, "GET", "/leads/pipelines", {}).status_code == 401

    sandbox.expire_access_tokens()
    reply = api(sandbox, "GET", "/leads/pipelines", auth)
    assert reply.status_code == 401
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json()["status"] == 401 and reply.json()["title"] == "Unauthorized"


def test_access_token_dies_after_its_lifetime(sandbox: AmoCRMSandbox, auth: dict[str, str]) -> None:
    real = sandbox.clock
    start = real()
    sandbox.clock = lambda: start + 86400 - 60
    assert api(sandbox, "GET", "/account", auth).status_code == 200
    sandbox.clock = lambda: start + 86400 + 60
    assert api(sandbox, "GET", "/account", auth).status_code == 401
    long_lived = {"Authorization": f"Bearer {sandbox.long_lived_token(days=30)}"}
    assert api(sandbox, "GET", "/account", long_lived).status_code == 200


# --- leads -----------------------------------------------------------------------------------


def test_get_lead_embeds_loss_reason_and_contacts_only_when_asked(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    lead_id = sandbox.add_lead(
        {"name": "Станки", "price": 150000, "responsible_user_id": ANNA}
        | {"_embedded": {"contacts": [{"id": 10971465, "is_main": True}]}}
    )
    sandbox.update_lead(lead_id, {"status_id": 143, "loss_reason_id": NO_NEED}, by_user=ANNA)

    reply = api(sandbox, "GET", f"/leads/{lead_id}", auth, params={"with": "contacts,loss_reason"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/hal+json")
    lead = reply.json()
    assert (lead["status_id"], lead["pipeline_id"], lead["loss_reason_id"]) == (143, SALES, NO_NEED)
    assert lead["closed_at"] is not None
    assert [r["id"] for r in lead["_embedded"]["loss_reason"]] == [NO_NEED]
    assert lead["_embedded"]["loss_reason"][0]["name"] == "Пропала потребность"
    assert lead["_embedded"]["contacts"] == [{"id": 10971465, "is_main": True}]

    plain = api(sandbox, "GET", f"/leads/{lead_id}", auth).json()
    assert "loss_reason" not in plain["_embedded"] and "contacts" not in plain["_embedded"]


def test_missing_lead_and_empty_list_answer_204_without_body(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    missing = api(sandbox, "GET", "/leads/424242", auth)
    assert (missing.status_code, missing.content) == (204, b"")
    empty = api(sandbox, "GET", "/leads", auth, params={"filter[id][]": "424242"})
    assert (empty.status_code, empty.content) == (204, b"")

    lead_id = sandbox.add_lead({"name": "A"})
    found = api(sandbox, "GET", "/leads", auth, params={"filter[id][]": str(lead_id)})
    assert found.status_code == 200
    assert [lead["id"] for lead in found.json()["_embedded"]["leads"]] == [lead_id]


def test_patch_echoing_the_get_shape_of_custom_fields_fails_validation(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    lead_id = sandbox.add_lead(
        {"name": "A", "custom_fields_values": [{"field_id": SOURCE, "values": [{"enum_id": SITE}]}]}
    )
    got = api(sandbox, "GET", f"/leads/{lead_id}", auth).json()["custom_fields_values"]
    assert got[0]["field_name"] == "Источник" and got[0]["field_type"] == "select"
    got[0]["values"] = [{"enum_id": CALL}]

    reply = api(
        sandbox, "PATCH", "/leads", auth, json=[{"id": lead_id, "custom_fields_values": got}]
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["title"] == "Bad Request" and body["detail"] == "Request validation failed"
    errors = body["validation-errors"][0]["errors"]
    assert body["validation-errors"][0]["request_id"] == "0"
    assert {(e["code"], e["path"]) for e in errors} >= {
        ("FieldNotExpected", "custom_fields_values.0.field_name"),
        ("FieldNotExpected", "custom_fields_values.0.field_type"),
    }
    assert sandbox.leads[lead_id]["custom_fields_values"][0]["values"][0]["enum_id"] == SITE


def test_patch_with_field_id_and_values_succeeds(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    lead_id = sandbox.add_lead({"name": "A"})
    fields = [{"field_id": SOURCE, "values": [{"enum_id": CALL}]}]
    fields += [{"field_id": COMMENT, "values": [{"value": "перезвонить"}]}]
    reply = api(sandbox, "PATCH", f"/leads/{lead_id}", auth, json={"custom_fields_values": fields})
    assert reply.status_code == 200 and reply.json()["id"] == lead_id

    lead = api(sandbox, "GET", f"/leads/{lead_id}", auth).json()
    values = {f["field_id"]: f["values"] for f in lead["custom_fields_values"]}
    assert values == {
        SOURCE: [{"value": "Звонок", "enum_id": CALL}],
        COMMENT: [{"value": "перезвонить"}],
    }

    unknown = [
        {"id": lead_id, "custom_fields_values": [{"field_id": 1, "values": [{"value": "x"}]}]}
    ]
    refused = api(sandbox, "PATCH", "/leads", auth, json=unknown)
    assert refused.status_code == 400
    error = refused.json()["validation-errors"][0]["errors"][0]
    assert (error["code"], error["path"]) == (
        "NotSupportedChoice",
        "custom_fields_values.0.field_id",
    )


def test_loss_reason_on_a_lead_that_is_not_lost_is_refused(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    lead_id = sandbox.add_lead({"name": "A"})
    reply = api(sandbox, "PATCH", "/leads", auth, json=[{"id": lead_id, "loss_reason_id": NO_NEED}])
    assert reply.status_code == 400
    assert reply.json()["errors"] == {
        str(lead_id): "Loss reason can be specified only for lost lead"
    }

    moved = [{"id": lead_id, "status_id": 143, "loss_reason_id": NO_NEED, "updated_by": 0}]
    ok = api(sandbox, "PATCH", "/leads", auth, json=moved)
    assert ok.status_code == 200
    assert ok.json()["_embedded"]["leads"][0]["id"] == lead_id
    assert sandbox.leads[lead_id]["loss_reason_id"] == NO_NEED
    assert sandbox.leads[lead_id]["updated_by"] == 0


# --- tasks and notes -------------------------------------------------------------------------


def test_task_without_responsible_goes_to_the_token_owner(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    lead_id = sandbox.add_lead({"name": "A", "responsible_user_id": ANNA})
    task = {"text": "Укажите причину", "complete_till": 1893499200, "entity_id": lead_id}
    task |= {"entity_type": "leads", "task_type_id": 1, "request_id": "rule-R3"}
    reply = api(sandbox, "POST", "/tasks", auth, json=[task])
    assert reply.status_code == 200
    created = reply.json()["_embedded"]["tasks"]
    assert created[0]["request_id"] == "rule-R3"

    stored = sandbox.tasks_for(lead_id)
    assert [t["id"] for t in stored] == [created[0]["id"]]
    assert stored[0]["responsible_user_id"] == 1  # the admin who owns the token, not Anna
    assert sandbox.leads[lead_id]["closest_task_at"] == 1893499200

    query = {"filter[entity_type]": "leads", "filter[entity_id][]": str(lead_id)}
    listed = api(sandbox, "GET", "/tasks", auth, params=query | {"filter[is_completed]": "0"})
    assert [t["text"] for t in listed.json()["_embedded"]["tasks"]] == ["Укажите причину"]

    no_deadline = api(sandbox, "POST", "/tasks", auth, json=[{"text": "x"}])
    assert no_deadline.status_code == 400
    paths = [e["path"] for e in no_deadline.json()["validation-errors"][0]["errors"]]
    assert paths == ["complete_till"]


def test_common_note_is_stored_for_the_lead(sandbox: AmoCRMSandbox, auth: dict[str, str]) -> None:
    lead_id = sandbox.add_lead({"name": "A"})
    note = {"entity_id": lead_id, "note_type": "common", "params": {"text": "Регламент R3"}}
    reply = api(sandbox, "POST", "/leads/notes", auth, json=[note])
    assert reply.status_code == 200
    assert reply.json()["_embedded"]["notes"][0]["entity_id"] == lead_id
    assert [n["params"]["text"] for n in sandbox.notes_for(lead_id)] == ["Регламент R3"]

    bad = api(sandbox, "POST", "/leads/notes", auth, json=[note | {"note_type": "memo"}])
    assert bad.status_code == 400 and len(sandbox.notes_for(lead_id)) == 1


# --- faults and limits -----------------------------------------------------------------------


def test_fail_next_gives_429_then_success(sandbox: AmoCRMSandbox, auth: dict[str, str]) -> None:
    sandbox.fail_next("/api/v4/leads", times=1, status=429)
    refused = api(sandbox, "GET", "/leads/pipelines", auth)
    assert refused.status_code == 429
    assert refused.json()["retry_after"] == sandbox.retry_after
    assert api(sandbox, "GET", "/leads/pipelines", auth).status_code == 200
    logged = [
        (e["path"], e["status"]) for e in sandbox.requests_log if e["path"].startswith("/api")
    ]
    assert logged == [("/api/v4/leads/pipelines", 429), ("/api/v4/leads/pipelines", 200)]


def test_more_than_the_rate_limit_per_second_gets_429(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    sandbox.rate_limit = 3
    statuses = [api(sandbox, "GET", "/users", auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# --- webhooks --------------------------------------------------------------------------------


def test_status_change_posts_legacy_status_hook_with_old_status(
    sandbox: AmoCRMSandbox, receiver: Receiver
) -> None:
    lead_id = sandbox.add_lead({"name": "Станки", "price": 150000, "responsible_user_id": ANNA})
    sandbox.subscribe(receiver.url, ["status_lead"])
    sandbox.update_lead(lead_id, {"name": "Станки и фрезы"}, by_user=ANNA)  # no stage move
    sandbox.update_lead(lead_id, {"status_id": OFFER}, by_user=ANNA)
    sandbox.wait_delivered()

    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["content_type"] == "application/x-www-form-urlencoded"
    flat = dict(post["pairs"])
    assert flat["leads[status][0][id]"] == str(lead_id)
    assert flat["leads[status][0][status_id]"] == str(OFFER)
    assert flat["leads[status][0][old_status_id]"] == str(FIRST)
    assert flat["leads[status][0][pipeline_id]"] == flat["leads[status][0][old_pipeline_id]"]
    assert flat["leads[status][0][modified_user_id]"] == str(ANNA)
    assert flat["leads[status][0][name]"] == "Станки и фрезы"
    assert (flat["account[id]"], flat["account[subdomain]"]) == ("30000001", "sandbox")
    assert flat["account[_links][self]"] == sandbox.base_url
    assert "loss_reason_id" not in parse_pairs(post["pairs"])["leads"]["status"]["0"]
    assert receiver.threads[0] != threading.current_thread().name
    assert [(d["events"], d["status"]) for d in sandbox.deliveries] == [(["status_lead"], 200)]


def test_api_patch_echoes_update_and_status_hooks_separately(
    sandbox: AmoCRMSandbox, auth: dict[str, str], receiver: Receiver
) -> None:
    lead_id = sandbox.add_lead({"name": "A"})
    sandbox.subscribe(receiver.url, ["update_lead", "status_lead"])
    reply = api(sandbox, "PATCH", f"/leads/{lead_id}", auth, json={"status_id": 143})
    assert reply.status_code == 200
    sandbox.wait_delivered()
    keys = [{k.split("[0]")[0] for k, _ in post["pairs"] if "[0]" in k} for post in receiver.posts]
    assert keys == [{"leads[update]"}, {"leads[status]"}]


def test_batch_webhook_delivers_three_leads_in_one_post(
    sandbox: AmoCRMSandbox, receiver: Receiver
) -> None:
    ids = [sandbox.add_lead({"name": f"L{i}"}) for i in range(3)]
    sandbox.subscribe(receiver.url, ["status_lead"])
    with sandbox.batch_webhook():
        for lead_id in ids:
            sandbox.update_lead(lead_id, {"status_id": OFFER})
        assert receiver.posts == []
    sandbox.wait_delivered()

    assert len(receiver.posts) == 1
    body = parse_pairs(receiver.posts[0]["pairs"])
    statuses = body["leads"]["status"]
    assert sorted(statuses) == ["0", "1", "2"]
    assert [int(statuses[k]["id"]) for k in ("0", "1", "2")] == ids
    assert {statuses[k]["old_status_id"] for k in statuses} == {str(FIRST)}
    assert body["account"]["id"] == "30000001"
    assert sandbox.deliveries[0]["ids"] == ids


def test_hook_with_only_failed_answers_is_disabled(sandbox: AmoCRMSandbox, auth) -> None:
    failing = Receiver(status=500)
    try:
        lead_id = sandbox.add_lead({"name": "A"})
        sandbox.subscribe(failing.url, ["update_lead"])
        for i in range(101):
            sandbox.update_lead(lead_id, {"price": i})
        sandbox.wait_delivered(timeout=60)
        hooks = api(sandbox, "GET", "/webhooks", auth).json()["_embedded"]["webhooks"]
        assert [(h["destination"], h["disabled"]) for h in hooks] == [(failing.url, True)]
        sandbox.update_lead(lead_id, {"price": 1000})
        sandbox.wait_delivered()
        assert len(failing.posts) == 101
    finally:
        failing.server.stop()


def test_notes_and_tasks_are_listed_by_their_ids(
    sandbox: AmoCRMSandbox, auth: dict[str, str]
) -> None:
    # D:crm_platform/events-and-notes «Список примечаний по типу сущности» and
    # D:crm_platform/tasks-api «Список задач»: filter[id] takes one id or an array of them
    lead_id = sandbox.add_lead({"name": "A"})
    common = {"entity_id": lead_id, "note_type": "common", "params": {"text": "x"}}
    notes = api(sandbox, "POST", "/leads/notes", auth, json=[common] * 3).json()
    ids = [n["id"] for n in notes["_embedded"]["notes"]]
    listed = api(sandbox, "GET", "/leads/notes", auth, params={"filter[id][]": ids[::2]})
    assert [n["id"] for n in listed.json()["_embedded"]["notes"]] == ids[::2]
    one = api(sandbox, "GET", "/leads/notes", auth, params={"filter[id]": ids[1]})
    assert [n["id"] for n in one.json()["_embedded"]["notes"]] == [ids[1]]
    none = api(sandbox, "GET", "/leads/notes", auth, params={"filter[id][]": [1]})
    assert none.status_code == 204
    task = {"text": "t", "complete_till": 1893499200, "entity_id": lead_id}
    made = api(sandbox, "POST", "/tasks", auth, json=[task | {"entity_type": "leads"}] * 2)
    task_ids = [t["id"] for t in made.json()["_embedded"]["tasks"]]
    tasks = api(sandbox, "GET", "/tasks", auth, params={"filter[id][]": task_ids[1:]})
    assert [t["id"] for t in tasks.json()["_embedded"]["tasks"]] == task_ids[1:]
