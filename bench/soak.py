"""Soak (issue 8): a portal's managers change deals at a fixed rate for a fixed time while
things break, and the bridge must lose nothing and do nothing twice.

The bridge runs as in production: the webhook app under gunicorn with deploy/gunicorn.conf.py,
``bridge worker`` processes under a supervisor that restarts them, ``bridge cron`` (for
reconciliation), Redis with an AOF, a migrated journal. Meanwhile:

- a worker is killed (SIGKILL) every ``--kill-every`` seconds, and restarted at once;
- Redis is stopped once, halfway, for ``--redis-down`` seconds, and started again (webhooks
  that come meanwhile are spooled by the ingress; workers wait and reconnect);
- the Bitrix24 sandbox answers ``--errors`` of REST calls with 500 ``INTERNAL_SERVER_ERROR``,
  ``--rate-limited`` with 503 ``QUERY_LIMIT_EXCEEDED``, ``--late`` after the bridge's timeout
  (the write lands, the answer never comes), and loses ``--dropped`` of its webhooks (never
  sent: only reconciliation, every minute here, finds those changes).

Each change moves a deal to «lost» without a refusal reason, so each deal must end with exactly
one task (rule refusal-needs-reason). Printed: changes sent, webhooks posted and lost, events
processed, tasks, deals without a task (lost) and with two (duplicated), dead letters, what the
weather did, and the rate the bridge processed at against the rate the portal changed deals
(the reference, same run). The bar: 0 lost, 0 duplicated.

The CRM's rate limit is raised so that it is not the bottleneck (at Bitrix24's 2 requests/s a
portal takes at most 50 events/s: bench/portal.py).

Run: .venv/bin/python bench/soak.py [--seconds 600] [--rate 100] [--workers 2]
     [--journal postgresql|sqlite] [--kill-every 10] [--redis-down 5] [--settle 900]

``--settle``: how long the bridge has after the last change to finish (reconciliation runs
every minute here, so a dropped webhook's change waits up to a minute).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import harness
from sqlalchemy import text

from bridge import clock, reconcile
from bridge.crms.bitrix24.sandbox import Weather
from bridge.services import EmbeddedRedis

TIMEOUT = 5.0
"""The tenant's HTTP timeout (seconds): a late answer comes a second after it."""
RECONCILE_EVERY = "1 minute"


@dataclass
class Seen:
    """What a soak run saw."""

    changed: list[str] = field(default_factory=list)
    kills: int = 0
    redis_down_at: float | None = None
    depth: list[int] = field(default_factory=list)
    played_for: float = 0.0
    finished_after: float = 0.0


class Supervisor:
    """``n`` ``bridge worker`` processes, each restarted at once when killed (systemd's
    ``Restart=always``, deploy/bridge-worker.service)."""

    def __init__(self, n: int, env: dict[str, str], folder: Path) -> None:
        self.env, self.log = {**os.environ, **env}, open(folder / "workers.log", "ab")  # noqa: SIM115
        self.procs = [self._start() for _ in range(n)]
        self.kills = 0

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "worker"],
            env=self.env,
            cwd=harness.ROOT,
            stdout=self.log,
            stderr=self.log,
        )

    def kill_one(self) -> None:
        """SIGKILL the next worker (round robin) and start its replacement."""
        index = self.kills % len(self.procs)
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait()
        self.procs[index] = self._start()
        self.kills += 1

    def stop(self) -> None:
        """Stop every worker (SIGTERM: they finish their batch)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=60)
        self.log.close()


@contextlib.contextmanager
def cron(env: dict[str, str], folder: Path) -> Iterator[None]:
    """``bridge cron``: the reconciliation's schedule."""
    with open(folder / "cron.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "cron"],
            env={**os.environ, **env},
            cwd=harness.ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def play(made: harness.Stack, ids: list[str], rate: float, seen: Seen, chaos: Chaos) -> None:
    """Move each deal to «lost» at its time, ``rate`` a second; the chaos on its schedule."""
    start = time.monotonic()
    for i, deal_id in enumerate(ids):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        made.stand.update_record("deal", deal_id, stage="lost", fields={})
        seen.changed.append(deal_id)
        chaos.tick(time.monotonic() - start)
    seen.played_for = time.monotonic() - start


@dataclass
class Chaos:
    """What breaks, and when (seconds since the first change)."""

    workers: Supervisor
    redis: EmbeddedRedis
    kill_every: float
    redis_at: float
    redis_down: float
    seen: Seen
    next_kill: float = 0.0
    redis_done: bool = False

    def __post_init__(self) -> None:
        self.next_kill = self.kill_every

    def tick(self, now: float) -> None:
        """Kill a worker when one is due; stop Redis once (in a thread: the portal goes on)."""
        if self.kill_every and now >= self.next_kill:
            self.workers.kill_one()
            self.next_kill += self.kill_every
        if not self.redis_done and now >= self.redis_at:
            self.redis_done = True
            self.seen.redis_down_at = now
            threading.Thread(target=self.redis.restart, args=(self.redis_down,)).start()


def depth(made: harness.Stack, seen: Seen, stop: threading.Event) -> None:
    """Every 10 s: the events waiting in Redis (-1 while it is down)."""
    while not stop.wait(10.0):
        try:
            seen.depth.append(made.runtime.queue.waiting())
        except Exception:  # noqa: BLE001 - Redis is down on purpose
            seen.depth.append(-1)


def settle(made: harness.Stack, seen: Seen, timeout: float) -> None:
    """Wait until every changed deal has its task and nothing waits (or ``timeout`` s)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        tasks = harness.tasks_per_deal(made)
        with contextlib.suppress(Exception):
            if all(tasks[d] for d in seen.changed) and not made.runtime.queue.waiting():
                break
        time.sleep(2.0)
    seen.finished_after = time.monotonic() - start


def report(made: harness.Stack, seen: Seen, rate: float) -> bool:
    """Print the run's figures; returns whether the bar (0 lost, 0 duplicated) was met."""
    tasks = harness.tasks_per_deal(made)
    lost = [d for d in seen.changed if not tasks[d]]
    twice = [d for d in seen.changed if tasks[d] > 1]
    deliveries = list(made.sandbox.deliveries)
    answers = Counter(str(d.get("status")) for d in deliveries)
    with made.runtime.journal.engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM events GROUP BY status"))
        statuses = {status: n for status, n in rows}
    wall = seen.played_for + seen.finished_after
    processed_rate = len(seen.changed) / wall if wall else 0.0
    print(f"changes sent:          {len(seen.changed)} in {seen.played_for:.0f} s")
    print(f"webhooks:              {len(deliveries)} (answers by status: {dict(answers)})")
    print(f"journal events:        {statuses}")
    print(f"tasks:                 {sum(tasks[d] for d in seen.changed)}")
    print(f"lost (no task):        {len(lost)} {lost[:10]}")
    print(f"duplicated (2+ tasks): {len(twice)} {twice[:10]}")
    print(f"workers killed:        {seen.kills}; Redis stopped at {seen.redis_down_at or 0:.0f} s")
    print(f"weather:               {made.sandbox.weathered}")
    print(f"queue depth each 10 s: {' '.join(map(str, seen.depth))}")
    print(f"finished {seen.finished_after:.0f} s after the last change")
    print(
        f"processed {processed_rate:.1f} changes/s over the run; the portal changed "
        f"{rate:g}/s (the reference): ratio {harness.ratio(processed_rate, rate):.2f}"
    )
    met = not lost and not twice
    print(f"lost 0 and duplicated 0: {'met' if met else 'NOT met'}")
    for deal_id in twice[:3]:
        explain_twice(made, deal_id)
    return met


def explain_twice(made: harness.Stack, deal_id: str) -> None:
    """What the sandbox and the journal hold of a deal that got two tasks."""
    print(f"-- deal {deal_id}")
    for task in made.sandbox.tasks_for(f"D_{deal_id}"):
        made_at = task.get("CREATED_DATE")
        print(f"   task {task.get('ID')}: XML_ID {task.get('XML_ID')} at {made_at}")
    query = text(
        "SELECT a.key, a.status, a.attempts, a.error, a.created_at, a.updated_at, e.id, "
        "e.source, e.status, e.attempts FROM actions a JOIN events e ON e.id = a.event_id "
        "WHERE a.record_id = :deal ORDER BY a.id"
    )
    with made.runtime.journal.engine.connect() as conn:
        for row in conn.execute(query, {"deal": deal_id}):
            print("   action", " | ".join(str(v)[:80] for v in row))


def soak(args, folder: Path, server: EmbeddedRedis) -> bool:  # noqa: ANN001 - argparse
    """One soak run on a fresh stack."""
    limit = {**harness.UNLIMITED, "timeout": TIMEOUT}
    intervals = {"reconcile_every": RECONCILE_EVERY}
    with harness.journal(folder, args.journal) as url:
        made = harness.stack("bitrix24", folder, server.url, url, limit, **intervals)
        try:
            count = int(args.rate * args.seconds)
            ids = harness.open_deals(made, count)
            print(f"{count} deals made in the sandbox", flush=True)
            # the deals were made before the bridge listened: reconciliation starts from now
            reconcile.mark(made.runtime, harness.TENANT, clock.utcnow())
            (folder / "metrics").mkdir()
            env = {**made.env, "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
            seen = Seen()
            with harness.gunicorn("webhooks:create_app()", env, folder) as web, cron(env, folder):
                workers = Supervisor(args.workers, env, folder)
                try:
                    made.stand.connect(made.runtime, web)
                    weather(made, args)
                    chaos = Chaos(
                        workers, server, args.kill_every, args.seconds / 2, args.redis_down, seen
                    )
                    stop = threading.Event()
                    threading.Thread(target=depth, args=(made, seen, stop), daemon=True).start()
                    play(made, ids, args.rate, seen, chaos)
                    seen.kills = workers.kills
                    settle(made, seen, args.settle)
                    stop.set()
                finally:
                    workers.stop()
            return report(made, seen, args.rate)
        finally:
            made.close()


def weather(made: harness.Stack, args) -> None:  # noqa: ANN001
    """The portal's bad day, and the network's."""
    made.sandbox.set_weather(
        Weather(
            errors=args.errors,
            rate_limited=args.rate_limited,
            late=args.late,
            late_seconds=TIMEOUT + 1,
            seed=1,
        )
    )
    if args.dropped:
        made.sandbox.lose_every(round(1 / args.dropped))


def main() -> None:
    args = harness.arguments(
        __doc__,
        rounds=1,
        seconds=600,
        rate=100.0,
        workers=2,
        journal="postgresql",
        kill_every=10.0,
        redis_down=5.0,
        errors=0.05,
        rate_limited=0.02,
        late=0.01,
        dropped=0.05,
        settle=900.0,
    )
    print(
        f"soak: {args.rate:g} changes/s for {args.seconds} s, {args.workers} workers, "
        f"{args.journal} journal; a worker killed every {args.kill_every:g} s, Redis down "
        f"{args.redis_down:g} s once; REST: {args.errors:.0%} 500, {args.rate_limited:.0%} 503, "
        f"{args.late:.0%} late; {args.dropped:.0%} of webhooks dropped",
        flush=True,
    )
    results = []
    with harness.private_redis(appendonly=True) as server:
        for _ in range(args.rounds):
            with harness.workdir() as folder:
                results.append(soak(args, folder, server))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
