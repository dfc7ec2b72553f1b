"""A sweep over 100,000 open deals of a Bitrix24 portal: REST calls, and time at 2 requests/s.

The portal is the sandbox (in-process, no latency), seeded with N open deals of which 1% stand
in the meeting stage past the rule's 7 days. The bridge sweeps them once; the sandbox's
request log counts the HTTP requests the portal would have been sent. The reference is the
CRM's own limit: at Bitrix24's 2 requests a second (a bucket of 50), those requests take
``(requests - 50) / 2`` seconds at least; the goal is under 60 s. The wall time of the sweep
(with the bridge's limit raised, so the figure is the bridge's own cost) is printed too.

Run: .venv/bin/python bench/sweep.py [--deals 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bridge import sweeps
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.journal import migrate
from bridge.runtime import Runtime
from bridge.services import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "fixtures" / "timers.yaml"  # remarka, with a 7-day sweep rule
RATE, BURST = 2.0, 50  # Bitrix24's own limit (D:limits.md)
STAGES = [("MEETING", "Встреча", "P"), ("WON", "won", "S"), ("LOSE", "lost", "F")]


def seed(sandbox: Bitrix24Sandbox, deals: int) -> int:
    """Open deals, 1 in 100 stalled in the meeting stage for 10 days; returns how many."""
    now = datetime.now().astimezone()
    sandbox.add_pipeline(1, "Ремонт", STAGES)
    sandbox.add_user(9, "Олег", "Орлов")  # head_of_sales: the stalled deals' tasks go to him
    stalled = 0
    for i in range(deals):
        old = i % 100 == 7
        stalled += old
        moved = now - timedelta(days=10 if old else 2)
        sandbox.add_deal(
            {
                "TITLE": f"Сделка {i}",
                "CATEGORY_ID": "1",
                "STAGE_ID": "C1:MEETING",
                "ASSIGNED_BY_ID": "1",
                "MOVED_TIME": moved.isoformat(timespec="seconds"),
            }
        )
    return stalled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    deals = parser.parse_args().deals
    redis = EmbeddedRedis()
    sandbox = Bitrix24Sandbox().start()
    os.environ["REMARKA_B24_WEBHOOK_URL"] = sandbox.webhook_url
    os.environ["REMARKA_B24_APP_TOKEN"] = sandbox.application_token
    journal = f"sqlite:///{tempfile.mkdtemp()}/journal.db"
    migrate(journal)
    rt = Runtime.build(str(CONFIG), journal, redis.url)
    try:
        started = time.perf_counter()
        stalled = seed(sandbox, deals)
        took = time.perf_counter() - started
        print(f"seeded {deals:,} open deals ({stalled:,} stalled) in {took:.0f}s")
        before = len(sandbox.requests_log)
        started = time.perf_counter()
        summary = sweeps.sweep(rt, "remarka")
        wall = time.perf_counter() - started
        log = sandbox.requests_log[before:]
        http = [r for r in log if not r.get("batch")]
        at_limit = max(len(http) - BURST, 0) / RATE
        print(f"sweep: {summary}")
        print(f"  {len(http)} HTTP requests ({len(log)} REST calls inside them)")
        print(f"  tasks made: {len(sandbox.tasks)} (one per stalled deal: {stalled})")
        print(f"  at Bitrix24's {RATE:g} requests/s (bucket {BURST}): {at_limit:.1f}s, goal < 60s")
        print(f"  the bridge's own time (limit raised): {wall:.1f}s")
    finally:
        sandbox.stop()
        redis.stop()


if __name__ == "__main__":
    main()
