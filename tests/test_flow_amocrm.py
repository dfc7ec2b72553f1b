"""The whole flow on amoCRM, end to end over real HTTP and a real Redis.

The sandbox posts account webhooks as an account does
(https://www.amocrm.ru/developers/content/crm_platform/webhooks-format: form-encoded, PHP
bracket keys, ``leads[status][0][id]``, the legacy entity shape, ``account[id]``); the bridge
answers, queues, and the worker reads leads and writes tasks back through API v4
(https://www.amocrm.ru/developers/content/crm_platform/leads-api, .../tasks-api). The same
remarka pack as on Bitrix24, changed only by config/mappings/remarka-amocrm.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests

from bridge import timers
from bridge.formdata import build_query
from bridge.models import RecordRef
from tests.amocrm_env import (
    ACCOUNTS,
    EXPENSIVE,
    IVANOVA,
    LOST,
    MEETING,
    ORDER_SHIPPING,
    ORDERS,
    REQUEST_NEW,
    REQUESTS,
    SMIRNOV,
    WON,
    AmoBridge,
    lead,
)
from tests.conftest import journal_on

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same flow on SQLite and on PostgreSQL (the production journal)."""
    return journal_on(request, tmp_path)


def lost_lead(amo: AmoBridge, **fields: object) -> int:
    """A lead at the meeting stage, then closed as lost by its manager."""
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.work()
    amo.sandbox.update_lead(lead_id, {"status_id": LOST, **fields}, by_user=IVANOVA)
    amo.work()
    return lead_id


def test_lost_lead_without_loss_reason_gets_one_task_for_its_manager(amo: AmoBridge) -> None:
    lead_id = lost_lead(amo)
    tasks = amo.sandbox.tasks_for(lead_id)
    assert len(tasks) == 1
    task = tasks[0]
    assert task["responsible_user_id"] == IVANOVA
    assert task["text"].startswith("Укажите причину отказа: Ремонт кухни\n")
    assert task["entity_type"] == "leads" and task["task_type_id"] == 1
    event = next(e["event"] for e in amo.runtime.journal.recent() if e["actions"])
    calendar = amo.runtime.tenant("remarka").calendar
    due = calendar.add_working(event.received_at, timedelta(hours=2))
    assert task["complete_till"] == int(due.timestamp())


def test_lost_lead_with_a_loss_reason_gets_no_task(amo: AmoBridge) -> None:
    lead_id = lost_lead(amo, loss_reason_id=EXPENSIVE)
    assert amo.sandbox.tasks_for(lead_id) == []
    # the update and the status hook of the move are two events: the first sees the move
    verdicts = [
        d.verdict
        for entry in amo.runtime.journal.recent(10)
        for d in entry["decisions"]
        if d.rule == "refusal-needs-reason"
    ]
    assert "satisfied" in verdicts and "fired" not in verdicts


def test_the_same_webhook_three_times_makes_one_task(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.work()
    amo.sandbox.update_lead(lead_id, {"status_id": LOST})
    amo.sandbox.wait_delivered()
    body = next(d["body"] for d in reversed(amo.sandbox.deliveries) if "status_lead" in d["events"])
    answers = [requests.post(amo.hook_url(), data=body, headers=FORM, timeout=5) for _ in range(3)]
    amo.work()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(amo.sandbox.tasks_for(lead_id)) == 1


def test_the_bridge_settles_on_its_own_echo(amo: AmoBridge) -> None:
    lead_id = lost_lead(amo)
    amo.sandbox.update_lead(lead_id, {"name": "Ремонт кухни и коридора"})  # an unrelated edit
    amo.settle()
    assert len(amo.sandbox.tasks_for(lead_id)) == 1
    echo = [e["event"] for e in amo.runtime.journal.recent(50) if e["event"].source == "task[add]"]
    assert [(e.type, e.kind, e.status) for e in echo] == [("activity.created", "", "processed")]


def test_task_hooks_name_their_lead_and_others_are_skipped(amo: AmoBridge) -> None:
    # https://www.amocrm.ru/developers/content/crm_platform/webhooks-format: task[...] with
    # element_type 2 (a lead) and a local-time complete_till; a contact's task is ignored
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.work()
    task = {"id": 4745251, "element_id": lead_id, "element_type": 2, "task_type": 1}
    task |= {"text": "Позвонить", "status": 1, "action_close": 1}
    task |= {"responsible_user_id": IVANOVA, "complete_till": "2025-10-27 10:30:00"}
    contact_task = {**task, "id": 4745252, "element_type": 1}
    body = {"task": {"update": {"0": task, "1": contact_task}}}
    body["account"] = {"subdomain": "remarka", "id": ACCOUNTS["remarka"]}
    answer = amo.sandbox.post_webhook(amo.hook_url(), parse_qsl(build_query(body)))
    assert answer.status_code == 200
    (created,) = answer.json()["events"]
    amo.work()
    event = amo.runtime.journal.event_by_entry("remarka", created["entry"])
    assert (event.source, event.type, event.record_id, event.subject) == (
        "task[update]",
        "activity.updated",
        str(lead_id),
        "4745251",
    )
    assert event.status == "processed"
    nothing = {"contacts": {"add": {"0": {"id": 1}}}, "account": body["account"]}
    answer = amo.sandbox.post_webhook(amo.hook_url(), parse_qsl(build_query(nothing)))
    assert (answer.status_code, answer.json()["events"]) == (200, [])


def test_bad_secret_is_refused_and_nothing_is_queued(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.sandbox.wait_delivered()
    queued = amo.runtime.queue.waiting()
    body = amo.sandbox.deliveries[-1]["body"]
    answer = requests.post(amo.hook_url(secret="forged"), data=body, headers=FORM, timeout=5)
    assert answer.status_code == 403
    assert "secret" in answer.json()["reason"]
    assert amo.runtime.queue.waiting() == queued
    assert amo.runtime.journal.recent(1)[0]["event"].status == "rejected"
    assert lead_id


def test_a_body_of_another_account_is_refused(amo: AmoBridge) -> None:
    pairs = status_pairs([1000001], account_id=99999999)
    answer = amo.sandbox.post_webhook(amo.hook_url(), pairs)
    assert answer.status_code == 403
    assert "account[id]" in answer.json()["reason"]


def test_body_without_the_id_is_refused_naming_the_key(amo: AmoBridge) -> None:
    pairs = [p for p in status_pairs([1000001]) if p[0] != "leads[status][0][id]"]
    answer = amo.sandbox.post_webhook(amo.hook_url(), pairs)
    assert answer.status_code == 400
    assert answer.json()["reason"] == "missing leads[status][0][id]"
    rejected = amo.runtime.journal.recent(1)[0]["event"]
    assert (rejected.status, rejected.reason) == ("rejected", "missing leads[status][0][id]")


def test_a_malformed_bracket_key_is_refused_naming_it(amo: AmoBridge) -> None:
    answer = amo.sandbox.post_webhook(amo.hook_url(), [*status_pairs([1]), ("leads[status", "x")])
    assert answer.status_code == 400
    assert "leads[status" in answer.json()["reason"]


def test_one_webhook_with_three_leads_makes_three_events(
    make_amo_bridge: Callable[..., AmoBridge],
) -> None:
    amo = make_amo_bridge(events=["status_lead"])
    ids = [amo.sandbox.add_lead(lead(f"Ремонт {n}", MEETING)) for n in range(3)]
    posts = len(amo.sandbox.deliveries)
    with amo.sandbox.batch_webhook():
        for lead_id in ids:
            amo.sandbox.update_lead(lead_id, {"status_id": LOST})
    amo.work()
    assert len(amo.sandbox.deliveries) == posts + 1  # one post
    events = [e["event"] for e in amo.runtime.journal.recent(10)]
    assert sorted(int(e.record_id) for e in events) == ids
    assert {e.source for e in events} == {"leads[status]"}
    assert all(len(amo.sandbox.tasks_for(lead_id)) == 1 for lead_id in ids)


def test_the_answer_lists_every_event_of_a_post(amo: AmoBridge) -> None:
    ids = [amo.sandbox.add_lead(lead(f"Ремонт {n}", MEETING)) for n in range(3)]
    amo.work()
    answer = amo.sandbox.post_webhook(amo.hook_url(), status_pairs(ids))
    assert answer.status_code == 200
    assert [e["status"] for e in answer.json()["events"]] == ["queued"] * 3
    assert amo.runtime.queue.waiting() == 3


def test_an_unknown_lead_is_a_permanent_204_failure(amo: AmoBridge) -> None:
    answer = amo.sandbox.post_webhook(amo.hook_url(), status_pairs([999]))
    entry = answer.json()["events"][0]["entry"]
    amo.work()
    event = amo.runtime.journal.event_by_entry("remarka", entry)
    assert event.status == "failed"
    assert "not found (204)" in event.reason


def test_expired_access_token_is_refreshed_once_and_the_work_completes(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.work()
    amo.sandbox.expire_access_tokens()
    amo.sandbox.update_lead(lead_id, {"status_id": LOST})
    amo.work()
    assert len(amo.sandbox.tasks_for(lead_id)) == 1
    assert [entry["ok"] for entry in amo.sandbox.refresh_log] == [True]


def test_a_revoked_refresh_token_pauses_the_tenant_and_keeps_its_event(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    amo.work()
    stolen = amo.connector().tokens.store.load()
    use_elsewhere(amo, stolen.refresh_token)  # another installation rotated it away
    amo.sandbox.expire_access_tokens()
    answer = amo.sandbox.post_webhook(amo.hook_url(), status_pairs([lead_id]))
    entry = answer.json()["events"][0]["entry"]
    amo.sandbox.update_lead(lead_id, {"status_id": LOST})  # not seen while paused
    amo.work()
    event = amo.runtime.journal.event_by_entry("remarka", entry)
    # kept as a dead letter after its retries, nothing dropped
    assert (event.status, event.attempts) == ("failed", 4)
    assert event.reason.startswith("gave up after 4 attempts: tenant remarka paused")
    assert "Token has been revoked" in event.reason and "bridge amocrm-auth" in event.reason
    assert event.id in amo.runtime.journal.dead_letters("remarka")
    assert amo.sandbox.tasks_for(lead_id) == []
    # every later call stops at the pause flag: the dead token was used once only
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True, False]

    from bridge.crms.amocrm.commands import authorize

    said = authorize(amo.runtime, "remarka", amo.sandbox.issue_code())
    assert "put back in the queue" in said
    amo.work()
    assert amo.runtime.journal.event(event.id).status == "processed"
    assert len(amo.sandbox.tasks_for(lead_id)) == 1


def use_elsewhere(amo: AmoBridge, refresh_token: str) -> None:
    body = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    body |= {"redirect_uri": "https://bridge.example/oauth/amocrm"}
    body |= {"grant_type": "refresh_token", "refresh_token": refresh_token}
    url = f"{amo.sandbox.base_url}/oauth2/access_token"
    assert requests.post(url, json=body, timeout=5).status_code == 200


def status_pairs(lead_ids: list[int], account_id: int = ACCOUNTS["remarka"]) -> list:
    """A ``leads[status]`` post as an account sends it (webhooks-format, reference §1.3)."""
    body: dict = {"leads": {"status": {}}}
    for n, lead_id in enumerate(lead_ids):
        body["leads"]["status"][str(n)] = {
            "id": lead_id,
            "name": "Ремонт",
            "status_id": LOST,
            "old_status_id": MEETING,
            "pipeline_id": 3104455,
            "old_pipeline_id": 3104455,
            "last_modified": 1700000000 + n,
            "account_id": account_id,
        }
    body["account"] = {"subdomain": "remarka", "id": account_id}
    return parse_qsl(build_query(body))


def test_429_answers_are_waited_out_without_breaking_7_requests_per_second(
    amo: AmoBridge,
) -> None:
    ids = [amo.sandbox.add_lead(lead(f"Ремонт {n}", MEETING)) for n in range(8)]
    amo.work()
    amo.sandbox.fail_next("/api/v4/leads", times=2)  # 429 with retry_after (Kommo's example)
    amo.sandbox.fail_next("/api/v4/tasks", times=1)
    with amo.sandbox.batch_webhook():
        for lead_id in ids:
            amo.sandbox.update_lead(lead_id, {"status_id": LOST})
    amo.work()
    assert all(len(amo.sandbox.tasks_for(lead_id)) == 1 for lead_id in ids)
    log = amo.sandbox.requests_log
    assert sum(r["status"] == 429 for r in log) >= 3
    assert busiest_second(log) <= 7, busiest_second(log)


def busiest_second(log: list[dict]) -> int:
    """The most requests (answered or refused) the account saw within any one second."""
    times = sorted(r["time"] for r in log)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


def test_a_request_from_a_returning_client_is_commented_and_marked(
    make_amo_bridge: Callable[..., AmoBridge],
) -> None:
    # autoparts A3 (the scenarios give the earlier orders as facts; here they are real leads
    # of the orders pipeline, found through GET /api/v4/contacts/{id}?with=leads)
    amo = make_amo_bridge(("autoparts",), events=[])
    sb = amo.sandboxes["autoparts"]
    sb.add_contact(501, "Пётр", email="petr@example.com")
    client = {"_embedded": {"contacts": [{"id": 501, "is_main": True}]}}
    titles = ["Колодки передние", "Щётки стеклоочистителя", "Масляный фильтр Mann W712/75"]
    # paid orders (being delivered, or done) count; a lost one does not
    stages = [ORDER_SHIPPING, WON, ORDER_SHIPPING]
    orders = [
        sb.add_lead(lead(t, s, SMIRNOV, ORDERS, **client))
        for t, s in zip(titles, stages, strict=True)
    ]
    sb.add_lead(lead("Отменённый заказ", LOST, SMIRNOV, ORDERS, **client))
    sb.subscribe(amo.hook_url("autoparts"), ["add_lead", "update_lead", "status_lead"])
    request = sb.add_lead(
        lead("Фильтры на ТО Skoda Octavia", REQUEST_NEW, SMIRNOV, REQUESTS, **client)
    )
    amo.settle()
    notes = sb.notes_for(request)
    assert [n["params"]["text"] for n in notes] == [
        f"Постоянный клиент, 3 заказа. Последний: сделка {orders[-1]} «{titles[-1]}». "
        "Постоянные клиенты — главный актив магазина."
    ]
    assert sb.leads[request]["custom_fields_values"][0]["values"] == [
        {"value": "да", "enum_id": 3121}
    ]
    record = amo.connector("autoparts").fetch(RecordRef("lead", str(request)))
    assert record.fields["returning_client"] == "yes"
    assert amo.connector("autoparts").contact_email(record) == "petr@example.com"


def test_a_hook_amocrm_disabled_raises_an_alert_in_the_journal(amo: AmoBridge) -> None:
    from bridge import jobs, runtime
    from bridge.crms.amocrm import HOOK_CHECK_SECONDS

    dead = "http://127.0.0.1:9/hooks/amocrm/remarka/old-address"  # nothing listens there
    amo.sandbox.subscribe(dead, ["update_lead"])
    lead_id = amo.sandbox.add_lead({"name": "Кухня"})
    for price in range(101):  # more than 100 bad answers in 2 hours: amoCRM disables the hook
        amo.sandbox.update_lead(lead_id, {"price": price})
    amo.sandbox.wait_delivered(timeout=60)
    runtime.install(amo.runtime)
    summary = jobs.check("remarka", "disabled_hooks")
    assert summary.startswith("amoCRM disabled the webhook to http://127.0.0.1:9/hooks/amocrm/")
    assert "old-address" not in summary  # the hook's secret path segment is masked
    alert = amo.runtime.journal.recent(1)[0]["event"]
    assert (alert.status, alert.source) == ("alert", "check:disabled_hooks")
    assert "re-enable it" in alert.reason
    cron = jobs.cron(amo.runtime).get_jobs()
    [job] = [j for j in cron if j.func_name.endswith(".check") and j.args[0] == "remarka"]
    assert (job.args, job.interval) == (("remarka", "disabled_hooks"), HOOK_CHECK_SECONDS)


def test_forty_completed_calls_cost_the_account_two_requests(amo: AmoBridge) -> None:
    # the account's limit is 7 requests a second: a batch's call notes are listed at once by
    # filter[id][] (https://www.amocrm.ru/developers/content/crm_platform/events-and-notes,
    # «Список примечаний по типу сущности»), and their leads, named by the note hooks
    # without a kind, are read once, with the batch (rule contact-ends-with-next-step)
    leads = [amo.sandbox.add_lead(lead(f"Ремонт {i}", MEETING)) for i in range(40)]
    amo.work()
    since = len(amo.sandbox.requests_log)
    for lead_id in leads:
        params = {"uniq": f"call-{lead_id}", "duration": 60, "source": "pbx", "link": ""}
        params |= {"phone": "+79990000000", "call_status": 4}  # the conversation took place
        note = {"entity_id": lead_id, "note_type": "call_out", "params": params}
        amo.sandbox.store.create_note(note, IVANOVA)
    amo.work()
    requests_sent = [(e["method"], e["path"]) for e in amo.sandbox.requests_log[since:]]
    assert sorted(requests_sent) == [("GET", "/api/v4/leads"), ("GET", "/api/v4/leads/notes")]
    timed = [timers.parse(m) for m, _ in timers.pending(amo.runtime.redis, "remarka")]
    next_steps = {r for _, _, r, s in timed if s.startswith("contact-ends-with-next-step|")}
    assert next_steps == {str(lead_id) for lead_id in leads}
