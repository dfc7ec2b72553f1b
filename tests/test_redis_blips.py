"""Redis stops and starts again: nothing the ingress answered 200 is lost, workers live on.

Each test has a Redis of its own (stopped and restarted on purpose), never the session's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bridge import jobs
from bridge.app import create_app
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.ingress import Gate
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.services import EmbeddedRedis
from bridge.spool import Replayer, Spool
from bridge.worker import Drainer, run_worker
from tests.bitrix24_env import EVENTS, ROOT, TEST_CONFIG, Bridge, deal, seed


@pytest.fixture
def blinking(
    journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Bridge, EmbeddedRedis]]:
    """Remarka's portal and a bridge on a Redis of the test's own, with a spool of its own."""
    server = EmbeddedRedis(appendonly=True)
    sandbox = Bitrix24Sandbox().start()
    seed(sandbox)
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


def lose_deals(env: Bridge, count: int) -> list[int]:
    ids = [env.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")) for n in range(count)]
    for deal_id in ids:
        env.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    env.sandbox.wait_delivered()
    return ids


def reason_tasks(env: Bridge, deal_id: int) -> int:
    titles = [t["TITLE"] for t in env.sandbox.tasks_for(f"D_{deal_id}")]
    return sum(title.startswith("Укажите причину отказа") for title in titles)


def test_events_posted_while_redis_is_down_are_spooled_and_processed_after(
    blinking: tuple[Bridge, EmbeddedRedis], tmp_path: Path
) -> None:
    env, server = blinking
    server.stop()
    ids = lose_deals(env, 5)  # 10 webhooks while Redis is down
    answers = [d["status"] for d in env.sandbox.deliveries]
    assert answers == [200] * 10  # kept on disk before the answer, never a 500 page
    spool = Spool(tmp_path / "spool")
    assert spool.size() == 10
    server.restart()
    assert Replayer(spool, Gate(env.runtime, spool).replay_spool).once() == 10
    assert spool.size() == 0
    run_worker(env.runtime, burst=True)
    assert [reason_tasks(env, deal_id) for deal_id in ids] == [1] * 5


def test_a_webhook_nothing_can_keep_is_answered_503_with_retry_after(
    blinking: tuple[Bridge, EmbeddedRedis], tmp_path: Path
) -> None:
    env, server = blinking
    server.stop()
    (tmp_path / "spool").write_text("a file where the spool's folder should be")
    deal_id = env.sandbox.add_deal(deal("Ремонт", "C1:MEETING"))
    answer = env.sandbox.post_event("ONCRMDEALUPDATE", deal_id, env.hook_url)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "30"
    assert answer.json()["error"] == "unavailable"


def test_a_drainer_waits_out_a_redis_restart(blinking: tuple[Bridge, EmbeddedRedis]) -> None:
    env, server = blinking
    stop = threading.Event()
    drainer = threading.Thread(target=Drainer(env.runtime).run, args=(stop,), daemon=True)
    drainer.start()
    try:
        server.stop()
        time.sleep(1.5)  # the drainer meets the outage, and backs off
        server.restart()
        [deal_id] = lose_deals(env, 1)
        deadline = time.monotonic() + 20
        while reason_tasks(env, deal_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert drainer.is_alive()
        assert reason_tasks(env, deal_id) == 1
    finally:
        stop.set()
        drainer.join(10)


def test_a_worker_process_lives_through_a_redis_restart(
    blinking: tuple[Bridge, EmbeddedRedis], journal_url: str
) -> None:
    env, server = blinking
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "worker"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BRIDGE_CONFIG": str(TEST_CONFIG),
            "BRIDGE_JOURNAL_URL": journal_url,
            "REDIS_URL": server.url,
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(2)  # started and working
        server.stop()
        time.sleep(3)  # rq and the drainer both lose Redis
        assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        server.restart()
        [deal_id] = lose_deals(env, 1)
        deadline = time.monotonic() + 30
        while reason_tasks(env, deal_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reason_tasks(env, deal_id) == 1
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(15)
    assert redis.Redis.from_url(server.url).ping()


def test_cron_starts_its_schedule_again_after_redis_was_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # rq's scheduler leaves on the first ConnectionError (seen in bench/soak.py: the cron
    # met Redis' restart at its minute and exited, and reconciliation stopped for good)
    starts: list[str] = []

    class Scheduler:
        def start(self) -> None:
            starts.append("start")
            if starts.count("start") < 3:
                raise redis.ConnectionError("Error 111 connecting: Connection refused.")

    monkeypatch.setattr(jobs, "cron", lambda rt: Scheduler())
    monkeypatch.setattr(jobs.time, "sleep", lambda seconds: starts.append(f"wait {seconds}"))
    jobs.run_cron(None)  # type: ignore[arg-type]
    assert starts == ["start", "wait 0.5", "start", "wait 1.0", "start"]
    assert "Redis unreachable" in caplog.text
