"""SLA timers: Redis bytes per timer at 1,000,000 scheduled, and schedules per second, against
rq's ``enqueue_at`` on the same Redis.

Timers are made as the engine makes them (``make_timer``) for the five tenants of
config/bridge.yaml, their timed rules, six-digit deal ids and stays, due over the next 30 days,
and scheduled through ``bridge.timers.schedule``. Bytes: Redis ``used_memory`` after minus
before, over the count; rq's reference is the same over 20,000 ``enqueue_at`` jobs with the same
arguments. Schedules per second: one timer per call (as ``enqueue_at`` takes one job), then 50
per call (the pipeline schedules a batch's timers in one call).

Run: .venv/bin/python bench/timers.py [--timers 1000000] [--calls 10000] [--rounds 3]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

import harness
import redis
from rq import Queue

from bridge import timers
from bridge.models import Record, Timer
from bridge.regulations.engine import make_timer

TENANTS = ("remarka", "monuments", "fireworks", "service", "autoparts")
RULES = (
    "estimate-late",
    "measurements-to-estimators",
    "estimate-approval-in-4-hours",
    "crew-booking-expires",
    "meeting-within-7-days-of-quote",
    "client-feedback-week-after-signing",
    "contact-ends-with-next-step",
    "next-contact-reminder",
)
RQ_JOBS = 20_000
BYTES_GOAL = 300
RATE_GOAL = 10_000
BATCH = 50


def made(start: int = 0) -> Iterator[tuple[str, Timer]]:
    """Realistic timers, ``(tenant, timer)``, numbered from ``start``."""
    now = datetime.now(UTC)
    n = start
    while True:
        tenant, rule = TENANTS[n % len(TENANTS)], RULES[n % len(RULES)]
        record = Record("deal", str(100_000 + n // 3), "crm")
        due = now + timedelta(seconds=(n * 7919) % (30 * 86400))
        yield tenant, make_timer(tenant, rule, n % 2, due, record, str(1 + n % 9))
        n += 1


def used_memory(connection: redis.Redis) -> int:
    """Redis ``used_memory`` in bytes."""
    return int(connection.info("memory")["used_memory"])


def bytes_per_timer(url: str, count: int) -> float:
    """Schedule ``count`` timers (10,000 to a call) and return Redis bytes per timer."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    before = used_memory(connection)
    source = made()
    for start in range(0, count, timers.CHUNK):
        chunk = list(islice(source, min(timers.CHUNK, count - start)))
        for tenant in TENANTS:
            timers.schedule(connection, tenant, [t for name, t in chunk if name == tenant])
    if connection.zcard(timers.KEY) != count:
        raise AssertionError(f"{connection.zcard(timers.KEY)} timers scheduled, not {count}")
    return (used_memory(connection) - before) / count


def rq_bytes_per_job(url: str) -> float:
    """Redis bytes per job that rq's ``enqueue_at`` scheduled (over :data:`RQ_JOBS`)."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    queue = Queue("bench", connection=connection)
    before = used_memory(connection)
    for tenant, timer in islice(made(), RQ_JOBS):
        queue.enqueue_at(timer.due, harness.nothing, *_arguments(tenant, timer))
    return (used_memory(connection) - before) / RQ_JOBS


def _arguments(tenant: str, timer: Timer) -> tuple[str, ...]:
    # what a timer job would carry: whose record, which rule, which step of which stay
    return tenant, timer.ref.kind, timer.ref.id, timer.rule, str(timer.step), timer.stay


def schedules_per_second(url: str, calls: int, per_call: int) -> float:
    """Timers scheduled per second, ``per_call`` timers of one tenant to a call."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    groups = [[t for _, t in islice(made(i * per_call), per_call)] for i in range(calls)]
    start = time.perf_counter()
    for group in groups:
        timers.schedule(connection, "remarka", group)
    return calls * per_call / (time.perf_counter() - start)


def rq_schedules_per_second(url: str, calls: int) -> float:
    """Jobs per second that rq's ``enqueue_at`` schedules, one to a call."""
    connection = redis.Redis.from_url(url)
    connection.flushall()
    queue = Queue("bench", connection=connection)
    items = list(islice(made(), calls))
    start = time.perf_counter()
    for tenant, timer in items:
        queue.enqueue_at(timer.due, harness.nothing, *_arguments(tenant, timer))
    return calls / (time.perf_counter() - start)


def main() -> None:
    args = harness.arguments(__doc__, timers=1_000_000, calls=10_000)
    with harness.private_redis() as server:
        url = server.url
        harness.Comparison(
            f"Redis bytes per scheduled timer at {args.timers:,} timers",
            "bridge",
            f"rq enqueue_at (at {RQ_JOBS:,} jobs)",
            "bytes",
            goal=BYTES_GOAL,
            goal_on="figure",
            lower_is_better=True,
        ).run(lambda: bytes_per_timer(url, args.timers), lambda: rq_bytes_per_job(url), args.rounds)
        for per_call in (1, BATCH):
            harness.Comparison(
                f"timers scheduled per second, {per_call} to a call ({args.calls:,} timers)",
                "bridge",
                "rq enqueue_at, 1 to a call",
                "/s",
                goal=RATE_GOAL,
                goal_on="figure",
            ).run(
                lambda n=per_call: schedules_per_second(url, args.calls // n, n),
                lambda: rq_schedules_per_second(url, args.calls),
                args.rounds,
            )


if __name__ == "__main__":
    main()
