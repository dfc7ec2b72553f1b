"""Four worker processes on one portal, killed with SIGKILL one after another during a burst of
200 events, and Redis restarted in the middle: no event lost, no task made twice.

A killed worker's tenant comes back when its lease runs out (2 s here), with the entries the
dead worker never acknowledged; Redis keeps its streams in an AOF across the restart. The
portal answers slowly (50 ms a request), so that the kills land in the middle of batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.app import create_app
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.services import EmbeddedRedis
from tests.bitrix24_env import EVENTS, ROOT, TEST_CONFIG, Bridge, deal, seed
from tests.conftest import journal_on

WORKERS = 4
DEALS = 100  # 200 events: each deal added, then lost without a reason


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same flow on SQLite and on PostgreSQL (the production journal)."""
    return journal_on(request, tmp_path)


@pytest.fixture
def stand(
    journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bridge, EmbeddedRedis]]:
    server = EmbeddedRedis(appendonly=True)
    sandbox = Bitrix24Sandbox().start()
    seed(sandbox)

    @sandbox.app.before_request
    def _slow() -> None:
        time.sleep(0.05)

    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", sandbox.webhook_url)
    monkeypatch.setenv("REMARKA_B24_APP_TOKEN", sandbox.application_token)
    monkeypatch.setenv("BRIDGE_SPOOL", str(tmp_path / "spool"))
    rt = Runtime.build(str(TEST_CONFIG), journal_url, server.url)
    env = Bridge(sandbox, rt, LoopbackServer(create_app(runtime=rt)).start())
    for name in EVENTS:
        sandbox.subscribe(name, env.hook_url)
    yield env, server
    env.server.stop()
    sandbox.stop()
    server.stop()


def start_worker(journal_url: str, redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRIDGE_LEASE_MS": "2000"}
    env |= {"BRIDGE_CONFIG": str(TEST_CONFIG), "BRIDGE_JOURNAL_URL": journal_url}
    env |= {"REDIS_URL": redis_url}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_workers_and_a_redis_restart_lose_nothing_and_do_nothing_twice(
    stand: tuple[Bridge, EmbeddedRedis], journal_url: str
) -> None:
    env, server = stand
    workers = [start_worker(journal_url, server.url) for _ in range(WORKERS)]
    kills = 0
    try:
        ids = []
        for n in range(DEALS):
            ids.append(env.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")))
            env.sandbox.update_deal(ids[-1], {"STAGE_ID": "C1:LOSE"})
            if n % 20 == 10:  # a kill every 20 deals: one worker dies mid-batch, another starts
                victim = kills % WORKERS
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(10)
                workers[victim] = start_worker(journal_url, server.url)
                kills += 1
            if n == DEALS // 2:
                server.restart()  # Redis goes down and comes back from its AOF
        env.sandbox.wait_delivered(timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _finished(env, ids):
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
    assert kills == 5
    assert [d["status"] for d in env.sandbox.deliveries].count(200) == 2 * DEALS
    per_deal = Counter(
        uf
        for task in env.sandbox.tasks.values()
        for uf in task["UF_CRM_TASK"]
        if task["TITLE"].startswith("Укажите причину отказа")
    )
    assert per_deal == Counter({f"D_{deal_id}": 1 for deal_id in ids})  # none lost, none twice
    markers = Counter(task["XML_ID"] for task in env.sandbox.tasks.values())
    assert max(markers.values()) == 1  # no task of any rule was made twice
    assert env.runtime.queue.waiting() == 0


def _finished(env: Bridge, ids: list[int]) -> bool:
    done = {
        uf
        for task in env.sandbox.tasks.values()
        for uf in task["UF_CRM_TASK"]
        if task["TITLE"].startswith("Укажите причину отказа")
    }
    return all(f"D_{i}" in done for i in ids) and env.runtime.queue.waiting() == 0
