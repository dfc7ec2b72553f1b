"""A worker killed in the middle of a batch: the next worker finds the task it had created.

The sandbox holds its answer to the batch that creates the task; the worker (a real process)
is killed with SIGKILL while it waits. Its lease on the tenant runs out (2 s here, 20 s by
default), the next worker takes the tenant and the entry the dead one never acknowledged, lets
the write the dead one sent have twice the tenant's timeout to land, and must then see, through the
task's XML_ID, that the task exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from flask import Response, request

from tests.bitrix24_env import ROOT, TEST_CONFIG, Bridge, deal

WORKER = (
    "import sys; from bridge.runtime import Runtime; from bridge.worker import run_worker; "
    "run_worker(Runtime.build(sys.argv[1], sys.argv[2], sys.argv[3]), burst=True)"
)


def hold_batches(bridge: Bridge) -> tuple[threading.Event, threading.Event]:
    """Make the sandbox create the task, then hold the answer until released."""
    created, release = threading.Event(), threading.Event()

    @bridge.sandbox.app.after_request
    def _hold(response: Response) -> Response:
        creates = request.path.endswith("/batch") and b"tasks.task.add" in request.get_data()
        if creates and not release.is_set():
            created.set()
            release.wait(30)
        return response

    return created, release


def test_worker_killed_mid_job_and_retried_makes_one_task(
    bridge: Bridge, journal_url, redis_url
) -> None:
    created, release = hold_batches(bridge)
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    release.set()
    bridge.work()  # the bridge learns the deal
    release.clear()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.sandbox.wait_delivered()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRIDGE_LEASE_MS": "2000"}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(TEST_CONFIG), journal_url, redis_url],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        if not created.wait(30):
            worker.kill()
            raise AssertionError(
                f"the worker never reached the CRM: {worker.communicate()[1][-2000:]}"
            )
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1  # created before the kill
    [action] = bridge.runtime.journal.recent(1)[0]["actions"]
    assert action.status == "pending"

    # the dead worker's lease runs out; this worker takes the tenant and its pending entry,
    # gives the write the dead one sent twice the tenant's timeout (3 s) to land, then looks
    # for it
    started = time.monotonic()
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    while bridge.runtime.queue.waiting("remarka") and time.monotonic() - started < 20:
        time.sleep(0.5)
        bridge.work()

    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    entry = bridge.runtime.journal.recent(1)[0]
    assert entry["event"].status == "processed"
    assert [a.status for a in entry["actions"]] == ["done"]
