"""An event the CRM failed for waits alone: it is parked, the tenant's other records go on.

Before parking, one failed request held the whole tenant back for its retry interval (10 s, then
a minute): at 5% of failed calls a busy portal spent most of its time waiting (bench/soak.py).
Now the failed event waits its interval alone, later events of its record wait behind it (a
record's events stay in order), and only batch after batch of failures (the CRM is down) holds
the tenant back. Time is moved by the queue's clock (``bridge.queue.now_ms``), never slept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Response, request

from bridge import pipeline, queue
from bridge.runtime import Runtime
from bridge.worker import Drainer
from tests.bitrix24_env import ROOT, Bridge, deal

INTERVAL = 600
"""Seconds a failed event waits: far longer than a test runs, so only the moved clock frees it."""


@pytest.fixture
def patient(make_bridge: Callable[..., Bridge], tmp_path: Path) -> Bridge:
    """Remarka on the sandbox, retrying after ten minutes (as a tenant of production would)."""
    text = (ROOT / "tests" / "fixtures" / "bridge.yaml").read_text(encoding="utf-8")
    text = text.replace("../../config/", f"{ROOT}/config/")
    text = text.replace("retry_intervals: [0, 0, 0]", f"retry_intervals: [{INTERVAL}, {INTERVAL}]")
    (tmp_path / "bridge.yaml").write_text(text, encoding="utf-8")
    return make_bridge(tmp_path / "bridge.yaml")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the queue's clock forward."""
    now = queue.now_ms()
    monkeypatch.setattr(queue, "now_ms", lambda: now + int(seconds * 1000))


def lose(bridge: Bridge, deal_id: int) -> None:
    """Move a deal to «lost» without a reason: the pack makes a task for it."""
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})


def statuses(bridge: Bridge, deal_id: int) -> list[str]:
    """The deal's events in the journal, oldest first, by status."""
    rows = bridge.runtime.journal.recent(50, "remarka")
    mine = [r["event"] for r in rows if r["event"].record_id == str(deal_id)]
    return [e.status for e in sorted(mine, key=lambda e: e.id)]


def test_a_failed_event_waits_alone_and_its_record_keeps_its_order(
    patient: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = patient
    first = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    other = bridge.sandbox.add_deal(deal("Ремонт ванной", "C1:MEETING"))
    bridge.work()

    bridge.sandbox.fail_next("tasks.task.add", status=500, error="INTERNAL_SERVER_ERROR")
    lose(bridge, first)
    bridge.work()
    assert bridge.sandbox.tasks_for(f"D_{first}") == []
    assert statuses(bridge, first)[-1] == "retrying"
    assert not bridge.runtime.queue.held("remarka")

    lose(bridge, other)  # another record: not held back by the first one's failure
    bridge.sandbox.update_deal(first, {"TITLE": "Ремонт кухни и коридора"})
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{other}")) == 1
    assert statuses(bridge, first)[-2:] == ["retrying", "processing"]  # the later one waits
    assert bridge.runtime.queue.waiting("remarka") == 2

    later(monkeypatch, INTERVAL + 1)
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{first}")) == 1
    assert statuses(bridge, first)[-2:] == ["processed", "processed"]
    assert bridge.runtime.queue.waiting("remarka") == 0
    # judged twice (the failed attempt and the retry), journaled once
    rows = bridge.runtime.journal.recent(50, "remarka")
    lost = next(r for r in rows if r["event"].record_id == str(first) and r["actions"])
    rules = [d.rule for d in lost["decisions"]]
    assert rules.count("refusal-needs-reason") == 1


def test_batch_after_batch_failing_holds_the_tenant_back_and_loses_nothing(
    patient: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = patient
    deals = [bridge.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")) for n in range(4)]
    bridge.work()
    bridge.sandbox.fail_next("tasks.task.add", times=pipeline.OUTAGE_STREAK, status=500)
    for deal_id in deals[: pipeline.OUTAGE_STREAK]:
        lose(bridge, deal_id)
        bridge.work()
    assert bridge.runtime.queue.held("remarka")

    lose(bridge, deals[-1])
    bridge.work()  # held: the new event is not even tried
    assert bridge.sandbox.tasks_for(f"D_{deals[-1]}") == []
    assert bridge.runtime.queue.waiting("remarka") == len(deals)

    bridge.runtime.queue.resume("remarka")  # the hold runs out
    later(monkeypatch, INTERVAL + 1)
    bridge.work()
    assert [len(bridge.sandbox.tasks_for(f"D_{d}")) for d in deals] == [1, 1, 1, 1]
    assert bridge.runtime.queue.waiting("remarka") == 0


def test_a_parked_event_outlives_its_worker(
    patient: Bridge,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    journal_url: str,
    redis_url: str,
) -> None:
    bridge = patient
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.fail_next("tasks.task.add", status=500)
    lose(bridge, deal_id)
    bridge.work()

    # another worker process, with nothing in memory, finds it in Redis when it comes due
    bridge.runtime = Runtime.build(str(tmp_path / "bridge.yaml"), journal_url, redis_url)
    later(monkeypatch, INTERVAL + 1)
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_an_entry_naming_an_event_the_journal_lacks_does_not_clog_the_queue(
    patient: Bridge,
) -> None:
    bridge = patient
    bridge.runtime.queue.append("remarka", {"k": "replay", "event": 987654})
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    lose(bridge, deal_id)
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    assert bridge.runtime.queue.waiting("remarka") == 0


def test_a_worker_that_lost_its_lease_mid_batch_writes_nothing(
    patient: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis away longer than a lease: another worker took the tenant while this one decided
    bridge = patient
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    lose(bridge, deal_id)
    bridge.sandbox.wait_delivered()
    decide = pipeline.decide

    def taken_meanwhile(rt: Runtime, *args: object) -> None:
        decide(rt, *args)  # type: ignore[arg-type]
        rt.redis.set(f"{queue.PREFIX}lease:remarka", "another-host:1:2:abc")

    monkeypatch.setattr(pipeline, "decide", taken_meanwhile)
    first = Drainer(bridge.runtime)
    first.round()
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []  # it wrote nothing

    monkeypatch.setattr(pipeline, "decide", decide)
    bridge.runtime.redis.delete(f"{queue.PREFIX}lease:remarka")  # the other one is done
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    assert bridge.runtime.queue.waiting("remarka") == 0


def test_a_write_still_landing_after_its_timeout_is_looked_for_not_sent_again(
    bridge: Bridge,
) -> None:
    # the portal carries out the write a second after the bridge stopped waiting (its
    # timeout: 3 s in tests/fixtures/bridge.yaml); retries come at once in this tenant
    slow, landed = threading.Event(), threading.Event()

    @bridge.sandbox.app.before_request
    def _late() -> None:
        creates = request.path.endswith("/batch") and b"tasks.task.add" in request.get_data()
        if creates and not slow.is_set():
            slow.set()
            time.sleep(4)

    @bridge.sandbox.app.after_request
    def _landed(response: Response) -> Response:
        if slow.is_set() and b"tasks.task.add" in request.get_data():
            landed.set()  # the first write that comes back is the late one (it went first)
        return response

    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    lose(bridge, deal_id)
    started = time.monotonic()
    while time.monotonic() - started < 30:
        bridge.work()
        if slow.is_set() and not bridge.runtime.queue.waiting("remarka"):
            break
        time.sleep(0.2)
    assert landed.wait(10)
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    [action] = next(r for r in bridge.runtime.journal.recent(5) if r["actions"])["actions"]
    assert action.status == "done"
