"""Webhooks that never came: one in ten lost on the way, every change is still processed once
the bridge has asked the CRM what changed (reconciliation), and only once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge import jobs, reconcile
from bridge.worker import run_worker
from tests.amocrm_env import LOST, MEETING, AmoBridge, lead
from tests.bitrix24_env import Bridge, deal

DEALS = 30


def reason_tasks(bridge: Bridge, deal_id: int) -> int:
    titles = [t["TITLE"] for t in bridge.sandbox.tasks_for(f"D_{deal_id}")]
    return sum(title.startswith("Укажите причину отказа") for title in titles)


def test_bitrix24_changes_whose_webhooks_were_lost_are_found_and_processed_once(
    bridge: Bridge,
) -> None:
    ids = [bridge.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")) for n in range(DEALS)]
    bridge.work()
    bridge.sandbox.lose_every(10)  # 10% of the portal's posts never arrive
    for deal_id in ids:
        bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    lost = [deal_id for deal_id in ids if reason_tasks(bridge, deal_id) == 0]
    assert len(lost) == DEALS // 10
    summary = reconcile.reconcile(bridge.runtime, "remarka")
    assert summary.endswith(f"{len(lost)} never heard of")
    run_worker(bridge.runtime, burst=True)
    assert [reason_tasks(bridge, deal_id) for deal_id in ids] == [1] * DEALS
    assert reconcile.reconcile(bridge.runtime, "remarka").endswith(" 0 never heard of")


def test_changes_whose_webhooks_wait_in_the_queue_are_not_fed_again(bridge: Bridge) -> None:
    ids = [bridge.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")) for n in range(DEALS)]
    bridge.work()
    bridge.sandbox.lose_every(10)
    for deal_id in ids:
        bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.sandbox.wait_delivered()  # queued, no worker yet: a backlog as a busy hour leaves
    waiting = bridge.runtime.queue.waiting("remarka")
    summary = reconcile.reconcile(bridge.runtime, "remarka")
    assert summary.endswith(f" {DEALS // 10} never heard of")
    assert bridge.runtime.queue.waiting("remarka") == waiting + DEALS // 10
    run_worker(bridge.runtime, burst=True)
    assert [reason_tasks(bridge, deal_id) for deal_id in ids] == [1] * DEALS


def test_amocrm_changes_whose_webhooks_were_lost_are_found(
    make_amo_bridge: Callable[..., AmoBridge],
) -> None:
    amo = make_amo_bridge(events=["add_lead", "status_lead"])
    ids = [amo.sandbox.add_lead(lead(f"Ремонт {n}", MEETING)) for n in range(10)]
    amo.work()
    amo.sandbox.lose_every(5)
    for lead_id in ids:
        amo.sandbox.update_lead(lead_id, {"status_id": LOST})
    amo.work()
    assert sum(not amo.sandbox.tasks_for(i) for i in ids) == 2
    assert reconcile.reconcile(amo.runtime, "remarka").endswith("2 never heard of")
    amo.work()
    assert [len(amo.sandbox.tasks_for(i)) for i in ids] == [1] * 10


def test_cron_reconciles_every_tenant_at_its_interval(bridge: Bridge) -> None:
    [job] = [
        j for j in jobs.cron(bridge.runtime).get_jobs() if j.func_name.endswith("reconcile_tenant")
    ]
    assert (job.args, job.interval) == (("remarka",), 15 * 60)


@pytest.mark.parametrize("every", ["next day at 10:00", "2 working days"])
def test_reconcile_every_must_be_a_plain_duration(every: str) -> None:
    from bridge.config import TenantConfig

    with pytest.raises(ValueError, match="plain duration"):
        TenantConfig(crm="bitrix24", connection={}, regulations=[], reconcile_every=every)
