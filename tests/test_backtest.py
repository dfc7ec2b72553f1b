"""Backtest: a pack replayed over a sandbox portal seeded with a known history gives exactly
the counts that history implies, by the CLI, the engine and the admin page alike."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bridge import clock
from bridge.backtest import pack_of, run
from bridge.cli import cli
from bridge.worker import run_worker
from tests.admin_env import Admin
from tests.amocrm_env import CREW, FIRST_CONTACT
from tests.amocrm_env import IVANOVA as AMO_IVANOVA
from tests.amocrm_env import LOST as AMO_LOST
from tests.amocrm_env import PETROV as AMO_PETROV
from tests.amocrm_env import lead as amo_lead
from tests.bitrix24_env import TEST_CONFIG, Bridge, deal

MSK = ZoneInfo("Europe/Moscow")
IVANOVA, PETROV, SIDOROVA = "3", "5", "7"


def seed_history(bridge: Bridge) -> datetime:
    """Six deals whose stage moves happened at known moments, 30 days back; returns the start.

    What the remarka pack implies, deal by deal:
    - A (ivanova) lost without a refusal reason: refusal-needs-reason, 1 (missing)
    - B (petrov) lost with a reason: nothing
    - C (ivanova) postponed without the next contact: postponed-needs-next-contact, 1
    - D (sidorova) crew booked and left there: crew-booking-expires after 3 days, 1 (overdue)
    - E (ivanova) crew booked, contract the next day: the booking timer finds it gone, 0
    - F (petrov) quote presented, no meeting in 7 days: meeting-within-7-days-of-quote, 1
    """
    sandbox = bridge.sandbox
    start = datetime.now(MSK).replace(microsecond=0) - timedelta(days=30)
    moments = iter(start + timedelta(minutes=i) for i in range(1000))

    def at(moment: datetime) -> None:
        sandbox.clock = lambda: moment

    def make(title: str, who: str, moves: list[tuple[int, dict]]) -> None:
        at(next(moments))
        deal_id = sandbox.add_deal(deal(title, ASSIGNED_BY_ID=who))
        for days, fields in moves:
            at(start + timedelta(days=days, minutes=len(title)))
            sandbox.update_deal(deal_id, fields, by_user=int(who))

    make("A", IVANOVA, [(1, {"STAGE_ID": "C1:LOSE"})])
    make("B", PETROV, [(2, {"STAGE_ID": "C1:LOSE", "UF_CRM_1700000001": "дорого"})])
    make("C", IVANOVA, [(1, {"STAGE_ID": "C1:POSTPONED"})])
    make("D", SIDOROVA, [(1, {"STAGE_ID": "C1:CREW"})])
    make("E", IVANOVA, [(1, {"STAGE_ID": "C1:CREW"}), (2, {"STAGE_ID": "C1:CONTRACT"})])
    make("F", PETROV, [(1, {"STAGE_ID": "C1:PRESENTATION"})])
    at(datetime.now(MSK))
    return start


EXPECTED_RULES = {
    "refusal-needs-reason": 1,
    "postponed-needs-next-contact": 1,
    "crew-booking-expires": 1,
    "meeting-within-7-days-of-quote": 1,
}
EXPECTED_MANAGERS = {IVANOVA: 2, PETROV: 1, SIDOROVA: 1}


def test_a_known_history_gives_exactly_its_counts(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge(subscribe=False)
    start = seed_history(bridge)
    rt = bridge.runtime
    tenant = rt.tenant("remarka")
    seen: list[tuple[int, int]] = []
    result = run(
        tenant,
        pack_of(tenant, "remarka"),
        rt.connector(tenant),
        start - timedelta(hours=1),
        clock.utcnow(),
        lambda done, total: seen.append((done, total)),
    )
    assert result.records == 6 and result.steps == 6 + 7
    assert result.per_rule() == EXPECTED_RULES
    assert result.per_manager() == EXPECTED_MANAGERS
    assert seen[-1] == (13, 13)
    sla = {row[0]: row[1:3] for row in result.tables()["sla"].rows}
    assert sla["crew-booking-expires"] == (2, 1)  # two bookings, one kept in time (E)
    assert sla["meeting-within-7-days-of-quote"] == (1, 0)
    # nothing was written to the portal: no task, no comment, no change
    assert bridge.sandbox.tasks == {} and bridge.sandbox.comments == {}
    writes = [c for c in bridge.sandbox.requests_log if not c["method"].endswith(".list")]
    assert writes == []


def test_the_history_starts_where_asked(make_bridge: Callable[..., Bridge]) -> None:
    bridge = make_bridge(subscribe=False)
    start = seed_history(bridge)
    tenant = bridge.runtime.tenant("remarka")
    later = run(
        tenant,
        pack_of(tenant, "remarka"),
        bridge.runtime.connector(tenant),
        start + timedelta(days=1, hours=12),  # after every move but E's second and B's
        clock.utcnow(),
    )
    assert later.steps == 2
    assert later.per_rule() == {}  # B had its reason; E moved on from a stay begun before


def test_bridge_backtest_prints_the_counts(
    make_bridge: Callable[..., Bridge], journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)  # migrated by the bridge's fixture
    bridge = make_bridge(subscribe=False)
    start = seed_history(bridge)
    since = (start - timedelta(days=1)).date().isoformat()
    args = ["backtest", "remarka", "--tenant", "remarka", "--since", since]
    result = CliRunner().invoke(cli, [*args, "--config", str(TEST_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "13 step(s) of 6 record(s), 4 violation(s)" in result.output
    assert "refusal-needs-reason · не заполнены поля · 1" in result.output
    assert "ivanova (3) · 2\n  petrov (5) · 1\n  sidorova (7) · 1" in result.output
    bad = CliRunner().invoke(cli, [*args[:1], "nope", *args[2:], "--config", str(TEST_CONFIG)])
    assert bad.exit_code == 1 and "no pack 'nope'" in bad.output


def test_the_backtest_page_runs_it_on_a_worker_with_a_progress_bar(
    admin_bridge: Bridge, orlov: Admin
) -> None:
    start = seed_history(admin_bridge)
    since = (start - timedelta(days=1)).date().isoformat()
    answer = orlov.post(f"/admin/backtest?tenant=remarka&since={since}", {"pack": "remarka"})
    assert answer.status_code == 302
    run_page = answer.headers["Location"]
    waiting = orlov.get(run_page).text
    assert "<progress" in waiting and 'http-equiv="refresh"' in waiting
    run_worker(admin_bridge.runtime, burst=True)
    done = orlov.get(run_page).text
    assert re.search(r'id="total">4<', done)
    assert "<progress" not in done and done.count("<svg") == 3
    job_id = run_page.split("/")[3].split("?")[0]
    csv = orlov.get(f"/admin/backtest/{job_id}/violations-by-manager.csv?tenant=remarka")
    rows = csv.data.decode("utf-8-sig").splitlines()
    assert rows == ["Менеджер,Число", "ivanova (3),2", "petrov (5),1", "sidorova (7),1"]
    assert orlov.get(f"/admin/backtest/{job_id}?tenant=autoparts").status_code == 404


def test_an_amocrm_history_from_its_events_feed(make_amo_bridge: Callable[..., Any]) -> None:
    amo = make_amo_bridge(events=[])
    sb = amo.sandbox
    start = datetime.now(MSK).replace(microsecond=0) - timedelta(days=20)

    def at(days: float) -> None:
        sb.clock = lambda: (start + timedelta(days=days)).timestamp()

    at(0)
    lost = sb.add_lead(amo_lead("Кухня", FIRST_CONTACT, AMO_IVANOVA))
    kept = sb.add_lead(amo_lead("Ванная", FIRST_CONTACT, AMO_PETROV))
    at(1)
    sb.update_lead(lost, {"status_id": AMO_LOST})  # no loss reason
    sb.update_lead(kept, {"status_id": CREW})  # a booking left for more than 3 days
    sb.clock = time.time
    tenant = amo.runtime.tenant("remarka")
    result = run(tenant, pack_of(tenant, "remarka"), amo.connector(), start, clock.utcnow())
    assert result.records == 2 and result.steps == 4
    assert result.per_rule() == {"refusal-needs-reason": 1, "crew-booking-expires": 1}
    assert result.per_manager() == {str(AMO_IVANOVA): 1, str(AMO_PETROV): 1}
