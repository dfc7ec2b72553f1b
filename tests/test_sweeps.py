"""A sweep over every open deal of a portal: finishes on 10,000 and acts only on the overdue."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge import jobs, sweeps
from tests.bitrix24_env import ROOT, Bridge, deal

CONFIG = ROOT / "tests" / "fixtures" / "timers.yaml"
OPEN_DEALS = 10_000
OVERDUE = 37


@pytest.fixture
def bridge(make_bridge) -> Bridge:
    return make_bridge(CONFIG, subscribe=False)


def seed(bridge: Bridge) -> set[int]:
    now = datetime.now().astimezone()
    overdue = set()
    for i in range(OPEN_DEALS):
        moved = now - timedelta(days=10 if i % 271 == 5 and len(overdue) < OVERDUE else 2)
        stage = "C1:MEETING" if i % 3 else "C1:ESTIMATE"
        if moved < now - timedelta(days=7):
            stage = "C1:MEETING"
        deal_id = bridge.sandbox.add_deal(
            deal(f"Сделка {i}", stage, MOVED_TIME=moved.isoformat(timespec="seconds"))
        )
        if moved < now - timedelta(days=7):
            overdue.add(deal_id)
    return overdue


def test_a_sweep_over_10000_open_deals_acts_only_on_the_overdue(bridge: Bridge) -> None:
    overdue = seed(bridge)
    assert len(overdue) == OVERDUE
    summary = sweeps.sweep(bridge.runtime, "remarka")
    assert summary == f"{OPEN_DEALS} open record(s) swept, {OVERDUE} with actions"
    tasks = list(bridge.sandbox.tasks.values())
    bound = {int(t["UF_CRM_TASK"][0].removeprefix("D_")) for t in tasks}
    assert bound == overdue
    assert len(tasks) == OVERDUE


def test_a_second_sweep_does_not_remind_twice(bridge: Bridge) -> None:
    now = datetime.now().astimezone()
    old = (now - timedelta(days=9)).isoformat(timespec="seconds")
    deal_id = bridge.sandbox.add_deal(deal("Старая сделка", "C1:MEETING", MOVED_TIME=old))
    sweeps.sweep(bridge.runtime, "remarka")
    sweeps.sweep(bridge.runtime, "remarka")
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_cron_looks_at_each_tenants_schedules_every_minute(bridge: Bridge) -> None:
    [job] = [j for j in jobs.cron(bridge.runtime).get_jobs() if "sweeps" in j.func_name]
    assert (job.func_name, job.args, job.interval) == (
        "bridge.jobs.scheduled_sweeps",
        ("remarka",),
        60,
    )
    assert sweeps.schedules(bridge.runtime.tenant("remarka")) == {"60 minutes": ["meeting-stalled"]}


def test_a_rule_with_its_own_schedule_sweeps_when_it_is_due_and_once(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = bridge.runtime.tenant("remarka")
    [pack] = tenant.packs
    monday = pack.rules[2].model_copy(update={"id": "monday-review", "every": "monday 10:00"})
    monkeypatch.setattr(tenant, "packs", [pack.model_copy(update={"rules": [*pack.rules, monday]})])
    old = "2025-11-01T10:00:00+03:00"
    deal_id = bridge.sandbox.add_deal(deal("Старая сделка", "C1:MEETING", MOVED_TIME=old))
    now = datetime.fromisoformat("2025-11-14T12:00:00+03:00")  # a Friday
    monkeypatch.setattr(sweeps.clock, "utcnow", lambda: now)
    assert sweeps.run_due(bridge.runtime, "remarka") == "nothing due"  # first look: counting
    now = datetime.fromisoformat("2025-11-17T10:00:30+03:00")  # Monday, half a minute late
    summary = sweeps.run_due(bridge.runtime, "remarka")
    # the hourly sweep, missed while nobody looked, runs once; the Monday rule too
    assert summary == (
        "60 minutes: 1 open record(s) swept, 1 with actions; "
        "monday 10:00: 1 open record(s) swept, 1 with actions"
    )
    titles = [t["TITLE"] for t in bridge.sandbox.tasks_for(f"D_{deal_id}")]
    assert titles == ["Сделка больше 7 дней на этапе встречи: Старая сделка"] * 2  # two rules
    now = datetime.fromisoformat("2025-11-17T10:01:30+03:00")
    assert sweeps.run_due(bridge.runtime, "remarka") == "nothing due"
