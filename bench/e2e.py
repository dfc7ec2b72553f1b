"""End to end: a portal's managers change 100 deals a second for 60 s; the bridge runs as in
production (the webhook app under gunicorn, two ``bridge worker`` processes, Redis with an AOF).

The Bitrix24 sandbox posts each change (``ONCRMDEALUPDATE``) to the webhook app; each change is
a deal moved to «lost» without a reason, so each should give its deal one task. Measured: the
time from the change to the task's creation in the sandbox (p50, p99; also from the webhook's
post, the part the bridge owns), the queue's depth each second (events in Redis not yet
acknowledged, and changes the sandbox has not posted yet), and deals left without a task (lost)
or given two (duplicated); both must be 0. The reference is the sandbox's own delivery: from
the change to the webhook's post, a floor no bridge can go under.

The tenant's rate limit is raised so far that the portal is no bottleneck (at Bitrix24's 2
requests/s a portal takes at most 50 events/s: bench/portal.py); ``--rate-limit 2`` shows that.

Run: .venv/bin/python bench/e2e.py [--seconds 60] [--rate 100] [--rounds 3]
     [--workers 2] [--journal sqlite|postgresql] [--rate-limit 0 (none)]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import harness

P99_GOAL = 200.0
DRAIN_TIMEOUT = 120.0
WARMUP = 50
"""Changes played and waited for before the measured ones: the workers' first batches open
connections and compile statements and templates, which a running bridge has long done."""
TASK_METHOD = "tasks.task.add"


@dataclass
class Round:
    """What one round saw; times are ``time.monotonic()`` in this process."""

    changed: dict[str, float] = field(default_factory=dict)
    depth: list[tuple[int, int]] = field(default_factory=list)
    """Per second: events waiting in Redis, changes not yet posted by the sandbox."""
    tasks: dict[str, list[float]] = field(default_factory=dict)
    posted: dict[str, float] = field(default_factory=dict)
    statuses: dict[int | None, int] = field(default_factory=dict)

    def latencies(self, since: dict[str, float]) -> list[float]:
        """Seconds from ``since`` to the first task of each deal changed in the round."""
        return [
            min(t) - since[d] for d, t in self.tasks.items() if d in self.changed and d in since
        ]

    def lost(self) -> int:
        """Deals changed and never given a task."""
        return sum(1 for d in self.changed if d not in self.tasks)

    def duplicated(self) -> int:
        """Deals given more than one task."""
        return sum(1 for t in self.tasks.values() if len(t) > 1)


@contextlib.contextmanager
def workers(n: int, env: dict[str, str], folder: Path) -> Iterator[None]:
    """``n`` ``bridge worker`` processes on the stack's environment, stopped afterwards."""
    with open(folder / "workers.log", "ab") as out:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bridge.cli", "worker"],
                env={**os.environ, **env},
                cwd=harness.ROOT,
                stdout=out,
                stderr=out,
            )
            for _ in range(n)
        ]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def play(made: harness.Stack, ids: list[str], rate: float, seen: Round) -> None:
    """Move each deal to «lost» at its time, ``rate`` a second, noting when."""
    start = time.monotonic()
    for i, deal_id in enumerate(ids):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        seen.changed[deal_id] = time.monotonic()
        made.stand.update_record("deal", deal_id, stage="lost", fields={})


def sample(made: harness.Stack, seen: Round, stop: threading.Event) -> None:
    """Each second: the events waiting in Redis, the changes the sandbox has not posted."""
    while not stop.wait(1.0):
        posted = sum(1 for d in list(made.sandbox.deliveries) if str(d["id"]) in seen.changed)
        unposted = len(seen.changed) - posted
        seen.depth.append((made.runtime.queue.waiting(), unposted))


def settle(made: harness.Stack, seen: Round) -> None:
    """Wait until every changed deal has its task and nothing waits (or the timeout)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        collect(made, seen)
        if not seen.lost() and not made.runtime.queue.waiting():
            return
        time.sleep(0.5)


def collect(made: harness.Stack, seen: Round) -> None:
    """Tasks (from the sandbox's request log) and posts (from its deliveries)."""
    seen.tasks.clear()
    for entry in list(made.sandbox.requests_log):
        if entry["method"] == TASK_METHOD:
            bound = entry["params"]["fields"]["UF_CRM_TASK"]
            deal = next(iter(bound.values() if isinstance(bound, dict) else bound))
            seen.tasks.setdefault(deal.removeprefix("D_"), []).append(entry["time"])
    seen.posted = {str(d["id"]): d["time"] for d in made.sandbox.deliveries}
    seen.statuses = {}
    for delivery in made.sandbox.deliveries:
        seen.statuses[delivery["status"]] = seen.statuses.get(delivery["status"], 0) + 1


def one_round(args, redis_url: str) -> Round:  # noqa: ANN001 - argparse's namespace
    """A fresh stack: play ``args.seconds`` of changes, wait for the tasks; what it saw."""
    limit = harness.UNLIMITED
    if args.rate_limit:
        limit = {"requests_per_second": args.rate_limit, "burst": 1}
    with harness.workdir() as folder, harness.journal(folder, args.journal) as url:
        made = harness.stack("bitrix24", folder, redis_url, url, limit)
        try:
            return measure(made, args, folder)
        finally:
            made.close()


def measure(made: harness.Stack, args, folder: Path) -> Round:  # noqa: ANN001
    """The web app and the workers up, the warm-up played, then the measured changes."""
    count = int(args.rate * args.seconds)
    ids = harness.open_deals(made, WARMUP + count)
    (folder / "metrics").mkdir()
    env = {**made.env, "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
    seen = Round()
    with (
        harness.gunicorn("webhooks:create_app()", env, folder) as web,
        workers(args.workers, env, folder),
    ):
        made.stand.connect(made.runtime, web)
        warm = Round()
        play(made, ids[:WARMUP], args.rate, warm)
        settle(made, warm)
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(made, seen, stop), daemon=True)
        sampler.start()
        play(made, ids[WARMUP:], args.rate, seen)
        settle(made, seen)
        stop.set()
        sampler.join()
    collect(made, seen)
    return seen


def describe(seen: Round) -> None:
    """Print what a round saw besides its p99."""
    ms = [1000 * x for x in seen.latencies(seen.changed)]
    bridge = [1000 * x for x in seen.latencies(seen.posted)]
    delivery = [1000 * (seen.posted[d] - t) for d, t in seen.changed.items() if d in seen.posted]
    print(
        f"  change -> task: p50 {harness.percentile(ms, 0.5):.0f} ms, "
        f"p99 {harness.percentile(ms, 0.99):.0f} ms, max {max(ms, default=0):.0f} ms; "
        f"post -> task: p50 {harness.percentile(bridge, 0.5):.0f} ms, "
        f"p99 {harness.percentile(bridge, 0.99):.0f} ms; change -> post: "
        f"p50 {harness.percentile(delivery, 0.5):.0f} ms, "
        f"p99 {harness.percentile(delivery, 0.99):.0f} ms"
    )
    print(
        f"  {len(seen.changed)} changes, {sum(len(seen.tasks.get(d, ())) for d in seen.changed)} "
        "tasks: "
        f"lost {seen.lost()}, duplicated {seen.duplicated()}; webhook answers {seen.statuses}"
    )
    print("  events waiting in Redis, each second:", " ".join(str(w) for w, _ in seen.depth))
    print("  changes not yet posted, each second: ", " ".join(str(u) for _, u in seen.depth))


def main() -> None:
    args = harness.arguments(
        __doc__, seconds=60, rate=100.0, workers=2, journal="sqlite", rate_limit=0.0
    )
    limit = f"rate limit {args.rate_limit:g}/s" if args.rate_limit else "no rate limit"
    comparison = harness.Comparison(
        f"end to end at {args.rate:g} changes/s for {args.seconds} s: {args.workers} workers, "
        f"gunicorn -w 2, {args.journal} journal, {limit}",
        "change -> task p99",
        "change -> post p99 (the sandbox)",
        "ms",
        goal=P99_GOAL,
        goal_on="figure",
        lower_is_better=True,
    )
    comparison.header()
    rounds = []
    with harness.private_redis(appendonly=True) as server:
        for _ in range(args.rounds):
            seen = one_round(args, server.url)
            describe(seen)
            rounds.append(seen)
            delivery = {d: t for d, t in seen.changed.items() if d in seen.posted}
            post = [seen.posted[d] - t for d, t in delivery.items()]
            comparison.add(
                1000 * harness.percentile(seen.latencies(seen.changed), 0.99),
                1000 * harness.percentile(post, 0.99),
            )
    comparison.summary()
    p50 = [harness.percentile(s.latencies(s.changed), 0.5) * 1000 for s in rounds]
    print(f"p50 change -> task, median of the rounds: {sorted(p50)[len(p50) // 2]:.0f} ms")
    bad = [(s.lost(), s.duplicated()) for s in rounds]
    verdict = "met" if all(b == (0, 0) for b in bad) else "NOT met"
    print(f"lost and duplicated per round: {bad}   goal both 0: {verdict}")


if __name__ == "__main__":
    main()
