"""The admin pages through Flask's test client: login everywhere, CSRF, lock-out, tenants,
and reports that count what really flowed through the bridge (sandbox portal, queue, worker)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime

import openpyxl
import pytest

from bridge.crms.connector import READ_RETRY_DELAYS
from tests.admin_env import Admin
from tests.bitrix24_env import Bridge, deal

LOST_WITHOUT_REASON = {"STAGE_ID": "C1:LOSE"}


def _admin_urls(admin: Admin) -> list[tuple[str, str]]:
    """(method, URL) of every admin route, with sample values for its arguments."""
    samples = {"event_id": 1, "job_id": "x", "name": "violations", "fmt": "csv", "filename": "a"}
    out = []
    for rule in admin.app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.endpoint in (
            "admin.login",
            "admin.static",
        ):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", str(samples[arg])).replace(f"<int:{arg}>", "1")
        out += [(m, url) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def test_every_admin_page_needs_a_login(make_admin: Callable[[], Admin]) -> None:
    admin = make_admin()
    urls = _admin_urls(admin)
    assert len(urls) >= 15
    for method, url in urls:
        answer = admin.get(url) if method == "GET" else admin.post(url, {})
        assert answer.status_code == 302, (method, url)
        assert answer.headers["Location"].startswith("/admin/login"), (method, url)


def test_login_sets_a_secure_httponly_samesite_cookie_and_logout_ends_it(
    make_admin: Callable[[], Admin],
) -> None:
    admin = make_admin()
    assert admin.login("orlov", "wrong").status_code == 401
    answer = admin.login("orlov")
    assert answer.headers["Location"] == "/admin/violations"
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert admin.get("/admin/violations").status_code == 200
    assert admin.post("/admin/logout", {}).status_code == 302
    assert admin.get("/admin/violations").status_code == 302


def test_a_form_without_its_csrf_token_is_refused(orlov: Admin) -> None:
    refused = orlov.post("/admin/queue/replay-all", {}, token=False)
    assert refused.status_code == 400
    assert "CSRF" in refused.text
    assert orlov.post("/admin/queue/replay-all", {}).status_code == 302


def test_a_login_locks_out_after_repeated_failures_in_every_worker(
    make_admin: Callable[[], Admin], admin_bridge: Bridge
) -> None:
    first, second = make_admin(), make_admin()  # two apps: two gunicorn workers, one Redis
    for _ in range(3):
        assert first.login("orlov", "guess").status_code == 401
    locked = second.login("orlov")  # the right password, in the other worker
    assert locked.status_code == 429
    assert "Слишком много неудачных попыток" in locked.text
    assert second.get("/admin/violations").status_code == 302
    admin_bridge.runtime.redis.flushall()  # the lock-out's window passes
    assert second.login("orlov").status_code == 302


def test_a_manager_limited_to_a_tenant_sees_no_other(
    make_admin: Callable[[], Admin], orlov: Admin
) -> None:
    ivanova = make_admin()
    assert ivanova.login("ivanova").status_code == 302
    page = ivanova.get("/admin/violations").text
    assert 'value="remarka"' in page and 'value="autoparts"' not in page
    for path in ("/admin/violations", "/admin/journal", "/admin/export/sla.csv", "/admin/queue"):
        assert ivanova.get(f"{path}?tenant=autoparts").status_code == 404, path
    assert orlov.get("/admin/violations?tenant=autoparts").status_code == 200


def _lost_deal(admin_bridge: Bridge, title: str, **fields: str) -> int:
    bridge = admin_bridge
    for name in ("ONCRMDEALADD", "ONCRMDEALUPDATE"):
        bridge.sandbox.subscribe(name, bridge.hook_url)
    deal_id = bridge.sandbox.add_deal(deal(title))
    bridge.settle()
    bridge.sandbox.update_deal(deal_id, {**LOST_WITHOUT_REASON, **fields}, by_user=3)
    bridge.settle()
    return deal_id


def test_violations_of_the_flow_are_charted_counted_and_exported(
    admin_bridge: Bridge, orlov: Admin
) -> None:
    _lost_deal(admin_bridge, "Кухня на Ленина")
    _lost_deal(admin_bridge, "Ванная на Мира", UF_CRM_1700000001="дорого")
    page = orlov.get("/admin/violations").text
    assert re.search(r'id="total">1<', page)
    assert page.count("<svg") == 3 and "pygal-chart" in page
    assert "refusal-needs-reason" in page and "ivanova (3)" in page
    csv = orlov.get("/admin/export/violations-by-rule.csv").data.decode("utf-8-sig")
    assert csv.splitlines() == [
        "Правило,Нарушение,Число",
        "refusal-needs-reason,не заполнены поля,1",
    ]
    xlsx = orlov.get("/admin/export/violations-by-manager.xlsx")
    assert xlsx.headers["Content-Disposition"].endswith('.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["Менеджер", "Число"],
        ["ivanova (3)", 1],
    ]
    refusals = orlov.get("/admin/export/refusals.csv").data.decode("utf-8-sig").splitlines()
    assert sorted(refusals[1:]) == ["дорого,1", "не указана,1"]


def test_an_event_opens_into_its_decisions_actions_and_the_crm_answers(
    admin_bridge: Bridge, orlov: Admin
) -> None:
    deal_id = _lost_deal(admin_bridge, "Кухня на Ленина")
    journal = orlov.get(f"/admin/journal?record_id={deal_id}&breaches=1").text
    [event_id] = re.findall(r"/admin/journal/(\d+)\?", journal)
    page = orlov.get(f"/admin/journal/{event_id}").text
    assert "refusal-needs-reason" in page and "missing: refusal_reason" in page
    tasks = admin_bridge.sandbox.tasks_for(f"D_{deal_id}")
    [task] = [t for t in tasks if t["TITLE"].startswith("Укажите причину отказа")]
    assert "create_task" in page and f"task_id&#34;: &#34;{task['ID']}" in page
    other = orlov.get(f"/admin/journal/{event_id}?tenant=autoparts")
    assert other.status_code == 404


def test_a_dead_letter_is_listed_and_replayed_with_a_button(
    admin_bridge: Bridge, orlov: Admin
) -> None:
    bridge = admin_bridge
    bridge.sandbox.subscribe("ONCRMDEALADD", bridge.hook_url)
    # 503 QUERY_LIMIT_EXCEEDED to each read of four attempts (each asks it again at once)
    bridge.sandbox.fail_next("crm.deal.get", times=4 * (1 + len(READ_RETRY_DELAYS)))
    bridge.sandbox.add_deal(deal("Кухня на Ленина"))
    bridge.settle()
    page = orlov.get("/admin/queue").text
    [event_id] = re.findall(r"/admin/queue/replay/(\d+)\?", page)
    assert "QUERY_LIMIT_EXCEEDED" in page and "gave up after 4 attempts" in page
    assert bridge.runtime.queue.waiting() == 0
    assert orlov.post(f"/admin/queue/replay/{event_id}?tenant=remarka", {}).status_code == 302
    assert bridge.runtime.queue.waiting("remarka") == 1
    assert "Очередь пуста" not in orlov.get("/admin/queue").text
    bridge.work()  # the portal answers again: the replayed event is carried through
    assert bridge.runtime.journal.event(int(event_id)).status == "processed"


def test_an_event_parked_after_a_crm_error_is_listed_with_its_retry_and_error(
    admin_bridge: Bridge, orlov: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = admin_bridge
    monkeypatch.setattr(bridge.runtime.tenant("remarka").config, "retry_intervals", [600])
    bridge.sandbox.subscribe("ONCRMDEALADD", bridge.hook_url)
    bridge.sandbox.fail_next("crm.deal.get", times=1 + len(READ_RETRY_DELAYS), status=500)
    deal_id = bridge.sandbox.add_deal(deal("Кухня на Ленина"))
    bridge.settle()

    section = orlov.get("/admin/queue").text.split('id="parked"')[1].split("</section>")[0]
    assert "Ждут повтора после ошибки CRM: 1" in section
    assert f"deal {deal_id}" in section and "QUERY_LIMIT_EXCEEDED" in section
    [when] = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", section)
    wait = datetime.fromisoformat(when) - datetime.now(UTC).replace(tzinfo=None)
    assert 500 < wait.total_seconds() <= 600


def test_try_a_rule_shows_why_each_rule_did_or_did_not_fire(orlov: Admin) -> None:
    form = {
        "type": "record.updated",
        "kind": "deal",
        "record_id": "42",
        "source": "paste",
        "record": '{"stage": "C1:LOSE", "outcome": "lost", "responsible": "3", "fields": {}}',
        "previous": '{"stage": "meeting"}',
    }
    page = orlov.post("/admin/try?tenant=remarka", form).text
    assert re.search(r"refusal-needs-reason</td><td>сработало · нарушение</td><td>missing: ", page)
    assert "did not enter postponed" in page
    assert "create_task: task «Укажите причину отказа" in page
    bad = orlov.post("/admin/try?tenant=remarka", {**form, "record": "{oops"}).text
    assert "не JSON" in bad


def test_pages_load_nothing_from_another_host(orlov: Admin) -> None:
    for path in (
        "/admin/violations",
        "/admin/sla",
        "/admin/refusals",
        "/admin/journal",
        "/admin/queue",
        "/admin/try",
        "/admin/backtest",
        "/admin/login",
    ):
        page = orlov.get(path).text
        loads = re.findall(r'(?:src|href)="([^"]+)"|url\(([^)]+)\)', page)
        outside = [u for pair in loads for u in pair if u and "://" in u]
        assert outside == [], (path, outside)
        assert "<script" not in page, path
        assert "/admin/static/admin/admin.css" in page
    css = orlov.get("/admin/static/admin/admin.css")
    assert css.status_code == 200 and "http" not in css.text
