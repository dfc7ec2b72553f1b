"""Events per second per portal at the CRM's own request limit, against that limit.

A Drainer's burst over N acting events (deals moved to «lost» without a reason: each makes a
task) with the tenant's shared rate limit at the CRM's pace: Bitrix24 at 2 requests/s with a
bucket of 1 (so the steady rate shows, not a burst), amoCRM at its sandbox's 7 requests/s (the
bridge paces itself at 90% of it). The reference is the limit computed from those numbers: a
batch of 50 events should cost the CRM one read and one write, so the limit is
``rate x 50 / 2`` events per second. The sandbox's request log counts what each batch really
cost, printed under each CRM's figures.

Then, one round each, workloads other than deal changes, whose requests are printed by method
the same way: ``--calls`` completed calls (activity events), and as many next-step timers
come due (rule contact-ends-with-next-step asks whether a next contact is planned).

Run: .venv/bin/python bench/portal.py [--events 500] [--calls 40] [--rounds 3]
     [--crm bitrix24,amocrm]
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import harness
import redis

from bridge import queue, timers
from bridge.models import Record
from bridge.regulations.engine import make_timer
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


def lost(made: harness.Stack, n: int) -> Callable[[], None]:
    """``n`` deals lost without a reason, their events queued; the check: a task each."""
    ids = harness.lost_deals(made, n)
    harness.admit(made, ids)
    return _one_task_each(made, ids)


def called(made: harness.Stack, n: int) -> Callable[[], None]:
    """A completed call on each of ``n`` open deals, queued; the check: a timer each."""
    harness.calls(made, harness.open_deals(made, n))

    def check() -> None:
        if len(timers.pending(made.runtime.redis, harness.TENANT)) != n:
            raise AssertionError("expected a timer per call (contact-ends-with-next-step)")

    return check


def timed_out(made: harness.Stack, n: int) -> Callable[[], None]:
    """``n`` open deals whose next-step timer (contact-ends-with-next-step) is due now, as
    after the calls above; the check: a task each (no next step was planned)."""
    ids = harness.open_deals(made, n)
    now = datetime.now(UTC)
    due = [
        make_timer(harness.TENANT, NEXT_STEP, 0, now, Record("deal", deal_id, made.crm), "1")
        for deal_id in ids
    ]
    timers.schedule(made.runtime.redis, harness.TENANT, due)
    return _one_task_each(made, ids)


def _one_task_each(made: harness.Stack, ids: list[str]) -> Callable[[], None]:
    def check() -> None:
        if harness.tasks_per_deal(made) != dict.fromkeys(ids, 1):
            raise AssertionError("expected exactly one task per deal")

    return check


NEXT_STEP = "contact-ends-with-next-step"
WORKLOADS = {"lost": lost, "calls": called, "timers": timed_out}


def drain(crm: str, redis_url: str, n: int, costs: Counter[str], workload: str = "lost") -> float:
    """Events per second of one Drainer at the CRM's rate; adds the requests to ``costs``."""
    redis.Redis.from_url(redis_url).flushall()
    with harness.workdir() as folder, harness.journal(folder) as url:
        pace = {"requests_per_second": RATE[crm], "burst": 1}
        made = harness.stack(crm, folder, redis_url, url, pace)
        try:
            check = WORKLOADS[workload](made, n)
            since = len(made.sandbox.requests_log)
            time.sleep(1.0)  # the bucket full again after the setup's requests (it holds one)
            start = time.perf_counter()
            Drainer(made.runtime).run(threading.Event(), burst=True)
            elapsed = time.perf_counter() - start
            check()
            costs.update(harness.http_requests(made, since))
        finally:
            made.close()
    return n / elapsed


def print_costs(costs: Counter[str], events: int) -> None:
    """The requests the portal was sent: per batch of 50 events and per event, by method."""
    batches = math.ceil(events / queue.BATCH)
    total = sum(costs.values())
    print(
        f"requests: {total} for {events} events in {batches} batch(es): "
        f"{total / batches:.2f} per batch, {total / events:.2f} per event"
    )
    for name, count in costs.most_common():
        print(f"  {name}: {count / batches:.2f} per batch, {count / events:.2f} per event")


def main() -> None:
    args = harness.arguments(__doc__, events=500, calls=40, crm="bitrix24,amocrm")
    with harness.private_redis() as server:
        for crm in args.crm.split(","):
            costs: Counter[str] = Counter()
            harness.Comparison(
                f"{crm}: events/s per portal at {RATE[crm]:g} requests/s, batches of "
                f"{queue.BATCH}, {args.events:,} acting events (deals lost without a reason)",
                "bridge",
                "limit",
                "events/s",
                goal=GOAL,
            ).run(
                lambda c=crm, k=costs: drain(c, server.url, args.events, k),
                lambda c=crm: limit(c),
                args.rounds,
            )
            print_costs(costs, args.rounds * args.events)
            for workload, what in (("calls", "completed calls"), ("timers", "timers due")):
                if not args.calls:
                    break
                costs = Counter()
                rate = drain(crm, server.url, args.calls, costs, workload)
                print(
                    f"{crm}, {args.calls} {what}, one round: "
                    f"{rate:.1f} events/s, {rate / limit(crm):.2f} of the limit"
                )
                print_costs(costs, args.calls)


if __name__ == "__main__":
    main()
