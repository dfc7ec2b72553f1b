"""Prometheus metrics move when events flow; /health and /ready; several gunicorn workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bridge.app import create_app
from bridge.journal import migrate
from bridge.runtime import Runtime
from tests.bitrix24_env import ROOT, TEST_CONFIG, Bridge, deal


def _value(text: str, name: str, **labels: str) -> float:
    """One sample of the text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.startswith(name):
            found = sample[len(name) :]
            got = ",".join(sorted(found.strip("{}").split(","))) if found else ""
            if found[:1] in ("{", "") and got == wanted:
                return float(value)
    return 0.0


def test_metrics_move_when_events_flow(bridge: Bridge) -> None:
    scrape = lambda: requests.get(f"{bridge.server.url}/metrics", timeout=5).text  # noqa: E731
    before = scrape()
    deal_id = bridge.sandbox.add_deal(deal("Кухня на Ленина"))
    bridge.sandbox.wait_delivered()
    waiting = scrape()
    assert _value(waiting, "bridge_queue_waiting") == 1
    bridge.settle()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"}, by_user=3)
    bridge.settle()
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("bridge_events_received_total", crm="bitrix24", result="queued") >= 2
    assert moved("bridge_actions_total", kind="create_task", result="done") == 3
    # a batch of events is one read and one write, whatever its size
    assert moved("bridge_crm_call_seconds_count", crm="bitrix24", operation="fetch_many") >= 2
    assert moved("bridge_crm_call_seconds_count", crm="bitrix24", operation="execute_many") == 2
    assert _value(after, "bridge_queue_waiting") == 0
    assert "bridge_timer_overdue_seconds" in after and "remarka" not in after


def test_crm_errors_are_counted_by_kind(bridge: Bridge) -> None:
    scrape = lambda: requests.get(f"{bridge.server.url}/metrics", timeout=5).text  # noqa: E731
    before = scrape()
    bridge.sandbox.fail_next("crm.deal.get", times=1, status=400, error="ACCESS_DENIED")
    bridge.sandbox.add_deal(deal("Кухня на Ленина"))
    bridge.settle()
    labels = {"crm": "bitrix24", "operation": "fetch_many", "error": "PermanentError"}
    counted = _value(scrape(), "bridge_crm_call_errors_total", **labels)
    assert counted - _value(before, "bridge_crm_call_errors_total", **labels) == 1


def test_health_names_no_tenant_and_ready_checks_redis_and_the_journal(
    bridge: Bridge, journal_url: str
) -> None:
    health = requests.get(f"{bridge.server.url}/health", timeout=5)
    assert health.json() == {"status": "ok"}
    ready = requests.get(f"{bridge.server.url}/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "journal": "ok"}
    dead = Runtime.build(str(TEST_CONFIG), journal_url, f"redis://127.0.0.1:{_free_port()}/0")
    answer = create_app(runtime=dead).test_client().get("/ready")
    assert answer.status_code == 503
    assert answer.json["checks"]["redis"] == "failed: ConnectionError"
    assert answer.json["checks"]["journal"] == "ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_counts_are_right_under_several_gunicorn_workers(
    tmp_path: Path, redis_url: str, redis_conn: object
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "BRIDGE_CONFIG": str(TEST_CONFIG),
        "BRIDGE_JOURNAL_URL": f"sqlite:///{tmp_path / 'journal.db'}",
        "REDIS_URL": redis_url,
        "REMARKA_B24_WEBHOOK_URL": "http://127.0.0.1:9/rest/1/x/",
        "REMARKA_B24_APP_TOKEN": "the-token",
        "BRIDGE_BIND": f"127.0.0.1:{port}",
        "BRIDGE_WEB_WORKERS": "3",
    }
    migrate(env["BRIDGE_JOURNAL_URL"])  # `bridge migrate`, once before the processes start
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "webhooks:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        calls = 30

        def post(i: int) -> int:  # no application token: each call is rejected and counted
            data = {"event": "X", "i": i}
            return requests.post(
                f"{base}/hooks/bitrix24/remarka", data=data, timeout=10
            ).status_code

        # at once, so that every sync worker gets some of them (each holds one at a time);
        # again while one worker took them all (the others still booting on a busy machine)
        counted = tmp_path / "metrics"
        deadline = time.monotonic() + 60
        sent = 0
        while sent == 0 or (
            len(list(counted.glob("counter_*.db"))) < 2 and time.monotonic() < deadline
        ):
            with ThreadPoolExecutor(max_workers=6) as pool:
                assert set(pool.map(post, range(calls))) <= {400, 401, 403}
            sent += calls
        calls = sent
        for _ in range(6):  # whichever worker answers, it adds up every worker's count
            text = requests.get(f"{base}/metrics", timeout=5).text
            assert (
                _value(text, "bridge_events_received_total", crm="bitrix24", result="rejected")
                == calls
            )
        assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=5).ok:
                return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer within 60 s")
