"""Events per second per portal at the CRM's own request limit, against that limit.

A Drainer's burst over N acting events (deals moved to «lost» without a reason: each makes a
task) with the tenant's shared rate limit at the CRM's pace: Bitrix24 at 2 requests/s with a
bucket of 1 (so the steady rate shows, not a burst), amoCRM at its sandbox's 7 requests/s (the
bridge paces itself at 90% of it). The reference is the limit computed from those numbers: a
batch of 50 events should cost the CRM one read and one write, so the limit is
``rate x 50 / 2`` events per second. The sandbox's request log counts what each batch really
cost, printed under each CRM's figures.

Run: .venv/bin/python bench/portal.py [--events 500] [--rounds 3] [--crm bitrix24,amocrm]
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import harness
import redis

from bridge import queue
from bridge.worker import Drainer

RATE = {"bitrix24": 2.0, "amocrm": 7.0}
"""The CRMs' documented request limits per second (Bitrix24: most plans; amoCRM: per
integration, as its sandbox enforces)."""
REQUESTS_PER_BATCH = 2
"""What a batch should cost: one read of every record, one write of every action."""
GOAL = 0.5


def limit(crm: str) -> float:
    """The most events per second a portal allows at its rate, 50 events to two requests."""
    return RATE[crm] * queue.BATCH / REQUESTS_PER_BATCH


def drain(crm: str, redis_url: str, n: int, costs: Counter[str]) -> float:
    """Events per second of one Drainer at the CRM's rate; adds the requests to ``costs``."""
    redis.Redis.from_url(redis_url).flushall()
    folder = harness.workdir()
    with harness.journal(folder) as url:
        pace = {"requests_per_second": RATE[crm], "burst": 1}
        made = harness.stack(crm, folder, redis_url, url, pace)
        try:
            ids = harness.lost_deals(made, n)
            harness.admit(made, ids)
            since = len(made.sandbox.requests_log)
            time.sleep(1.0)  # the bucket full again after the setup's requests (it holds one)
            start = time.perf_counter()
            Drainer(made.runtime).run(threading.Event(), burst=True)
            elapsed = time.perf_counter() - start
            if harness.tasks_per_deal(made) != dict.fromkeys(ids, 1):
                raise AssertionError("expected exactly one task per deal")
            costs.update(harness.http_requests(made, since))
        finally:
            made.close()
    return n / elapsed


def main() -> None:
    args = harness.arguments(__doc__, events=500, crm="bitrix24,amocrm")
    with harness.private_redis() as server:
        for crm in args.crm.split(","):
            costs: Counter[str] = Counter()
            harness.Comparison(
                f"{crm}: events/s per portal at {RATE[crm]:g} requests/s, batches of "
                f"{queue.BATCH}, {args.events:,} acting events",
                "bridge",
                "limit",
                "events/s",
                goal=GOAL,
            ).run(
                lambda c=crm, k=costs: drain(c, server.url, args.events, k),
                lambda c=crm: limit(c),
                args.rounds,
            )
            batches = args.rounds * math.ceil(args.events / queue.BATCH)
            total = sum(costs.values())
            print(f"requests per batch of {queue.BATCH}: {total / batches:.2f} ({total} in all)")
            for name, count in costs.most_common():
                print(f"  {name}: {count / batches:.2f} per batch")


if __name__ == "__main__":
    main()
