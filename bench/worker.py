"""One worker's events per second, against rq's SimpleWorker running empty jobs.

The figure: a Drainer's burst over N acting events already in the tenant's stream (each a deal
moved to «lost» without a reason, so each makes the bridge create a task), on the Bitrix24
sandbox with no latency and the tenant's rate limit raised so far that the CRM is no
bottleneck; the journal is migrated SQLite (``--journal postgresql`` for PostgreSQL). Every
round checks that each deal got exactly one task. The reference: rq's SimpleWorker on the
same Redis running N jobs that do nothing (what a worker costs before it does any work).

Run: .venv/bin/python bench/worker.py [--events 2000] [--rounds 3] [--crm bitrix24]
"""

from __future__ import annotations

import threading
import time

import harness
import redis
from rq import Queue, SimpleWorker

from bridge.worker import Drainer

GOAL = 0.5


def drain(crm: str, redis_url: str, kind: str, n: int) -> float:
    """Events per second of one Drainer over ``n`` acting events (a fresh stack each round)."""
    redis.Redis.from_url(redis_url).flushall()
    with harness.workdir() as folder, harness.journal(folder, kind) as url:
        made = harness.stack(crm, folder, redis_url, url, harness.UNLIMITED)
        try:
            ids = harness.lost_deals(made, n)
            harness.admit(made, ids)
            start = time.perf_counter()
            Drainer(made.runtime).run(threading.Event(), burst=True)
            elapsed = time.perf_counter() - start
            tasks = harness.tasks_per_deal(made)
            if tasks != {deal_id: 1 for deal_id in ids}:
                raise AssertionError(f"expected one task per deal, got {_odd(tasks, ids)}")
        finally:
            made.close()
    return n / elapsed


def _odd(tasks: dict[str, int], ids: list[str]) -> str:
    missing = [i for i in ids if i not in tasks]
    twice = [i for i, count in tasks.items() if count > 1]
    return f"{len(missing)} deal(s) without a task, {len(twice)} with more than one"


def empty_jobs(redis_url: str, n: int) -> float:
    """Jobs per second of rq's SimpleWorker over ``n`` queued jobs that do nothing."""
    connection = redis.Redis.from_url(redis_url)
    connection.flushall()
    queue = Queue("bench", connection=connection)
    for _ in range(n):
        queue.enqueue(harness.nothing)
    worker = SimpleWorker([queue], connection=connection)
    start = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - start
    if queue.finished_job_registry.count != n:
        raise AssertionError(f"rq finished {queue.finished_job_registry.count} of {n} jobs")
    return n / elapsed


def main() -> None:
    args = harness.arguments(__doc__, events=2000, crm="bitrix24", journal="sqlite")
    with harness.private_redis() as server:
        harness.Comparison(
            f"one worker: events/s over {args.events:,} acting events "
            f"({args.crm} sandbox, no latency, {args.journal} journal)",
            "bridge",
            "rq SimpleWorker, empty jobs",
            "/s",
            goal=GOAL,
        ).run(
            lambda: drain(args.crm, server.url, args.journal, args.events),
            lambda: empty_jobs(server.url, args.events),
            args.rounds,
        )


if __name__ == "__main__":
    main()
