"""The worker: drains the tenants' event streams in batches, fires due timers, runs rq's jobs.

A :class:`Drainer` takes a tenant under a lease (so a record's events are processed in order)
and carries up to :data:`BATCH` of its entries through the pipeline at once: the CRM sees one
request of reads and one of writes for the whole batch. While it works, a heartbeat renews its
leases; a worker killed mid-batch stops renewing, and within ``queue.LEASE_MS`` another worker
takes the tenant and the unacknowledged entries with it (at once, on the same machine, when the
holder's process is gone: :func:`bridge.queue.dead_here`). Every worker also moves due timers to
the streams, so timers need no scheduler process of their own.

Sweeps, the CRMs' checks and reconciliation are rq jobs (:data:`bridge.queue.JOBS`), run by the
same process: rq's :class:`~rq.SimpleWorker` in the main thread (no fork per job: the process
keeps its loaded config, connectors and scripts), the drainer in a thread beside it. A lost
Redis connection is waited out with backoff in both; the process never exits on it.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from bridge import clock, pipeline, queue, timers
from bridge.masking import install_log_redaction
from bridge.runtime import Runtime, install

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0
"""Seconds an idle worker sleeps at most (the doorbell wakes it sooner)."""
MAX_BACKOFF = 30.0
DRAINERS = 2
"""Drainer threads per worker process: a hung CRM holds one of them, not the process."""
BURST_PATIENCE = 1.0
"""Seconds a burst run waits for a tenant's hold to end before it calls the queue done."""


class Drainer:
    """Drains tenants' streams and fires timers, for one worker process."""

    def __init__(self, rt: Runtime, name: str | None = None, batch: int = queue.BATCH) -> None:
        self.rt = rt
        self.name = name or queue.owner_name()
        self.batch = batch
        self.firing = timers.Firing(rt.redis, queue.PREFIX)
        self.leases: set[str] = set()
        self._lock = threading.Lock()

    def round(self, stop: threading.Event | None = None) -> int:
        """Fire due timers, then drain every tenant this worker can take; returns how many
        entries were handled."""
        handled = self.firing.fire_due(clock.utcnow())
        for tenant in self.rt.queue.tenants():
            if stop is not None and stop.is_set():
                break
            if self.rt.queue.held(tenant) or not self.rt.queue.lease(tenant, self.name):
                continue
            with self._lock:
                self.leases.add(tenant)
            try:
                handled += self.drain(tenant, stop)
            finally:
                with self._lock:
                    self.leases.discard(tenant)
                self.rt.queue.release(tenant, self.name)
        return handled

    def drain(self, tenant: str, stop: threading.Event | None = None) -> int:
        """Carry a tenant's entries through, a batch at a time, until none is left or its CRM
        seems down (then the tenant is held back; what failed is parked, nothing is dropped)."""
        total = 0
        while stop is None or not stop.is_set():
            entries = self.rt.queue.take(tenant, self.name, self.batch)
            if not entries:
                break
            try:
                result = pipeline.run_batch(self.rt, tenant, entries, self.name)
            except queue.LeaseLost:
                log.warning("%s: another worker took the tenant; this batch is left to it", tenant)
                break
            self.rt.queue.park(tenant, result.parked)
            self.rt.queue.done(tenant, result.done)
            total += len(entries)
            if result.counts.get("waiting"):
                log.warning(
                    "%s: %d event(s) parked to try again: %s",
                    tenant,
                    result.counts["waiting"],
                    result.reason,
                )
            if result.wait_seconds is not None:
                self.rt.queue.hold(tenant, result.wait_seconds, result.reason)
                log.warning(
                    "%s: the CRM seems down; the tenant waits %.0fs: %s",
                    tenant,
                    result.wait_seconds,
                    result.reason,
                )
                break
        return total

    def idle(self) -> bool:
        """Nothing to take soon: every tenant's stream is empty and its parked events not due
        within a burst's patience (a second), or the tenant is held back for longer."""
        q = self.rt.queue
        return all(self._idle(t) or q.held_for(t) > BURST_PATIENCE for t in q.tenants())

    def _idle(self, tenant: str) -> bool:
        due = self.rt.queue.next_due(tenant)
        return not self.rt.queue.in_stream(tenant) and (due is None or due > BURST_PATIENCE)

    def run(self, stop: threading.Event, *, burst: bool = False) -> None:
        """Drain until ``stop`` is set (with ``burst``: until nothing is left to take)."""
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True)
        beat.start()
        backoff = 0.5
        while not stop.is_set():
            try:
                if self.round(stop):
                    backoff = 0.5
                    continue
                if burst and self.idle():
                    return
                self.rt.queue.wait(0.01 if burst else self._until_next_timer())
                backoff = 0.5
            except redis.RedisError as exc:
                log.error("Redis unreachable (%s); retrying in %.1fs", type(exc).__name__, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _until_next_timer(self) -> float:
        due = self.firing.next_due()
        if due is None:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(due - time.time(), 0.01))

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(queue.LEASE_MS / 3000):
            with self._lock:
                held = list(self.leases)
            try:
                self.rt.queue.renew(held, self.name)
            except redis.RedisError:
                log.warning("could not renew leases; Redis unreachable")


class ThreadWorker(SimpleWorker):
    """rq's worker for a caller outside the main thread (``bridge try``'s page): it leaves the
    process's signals alone, which only the main thread may handle, and times jobs out with
    rq's timer instead of SIGALRM."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def run_worker(
    rt: Runtime, *, burst: bool = False, threads: int = DRAINERS, in_thread: bool = False
) -> None:
    """Work until stopped: ``threads`` drainers, each in a thread, and rq's jobs in this one.

    Each drainer takes a tenant of its own, so a tenant whose CRM hangs holds one drainer
    (until its timeout), not the others' tenants. With ``burst``: drain every stream and run
    every queued job, then return (tests, demos). With ``in_thread`` (and ``burst``), the
    caller may be any thread (``bridge try``'s page): Ctrl-C is its own.
    """
    install(rt)
    install_log_redaction()
    logging.getLogger("rq.worker").setLevel(logging.WARNING if burst else logging.INFO)
    stop = threading.Event()
    if burst:
        drainer = Drainer(rt)
        drainer.run(stop, burst=True)
        _jobs(rt, ThreadWorker if in_thread else SimpleWorker).work(
            burst=True, logging_level="WARNING"
        )
        drainer.run(stop, burst=True)  # what the jobs queued
        return
    pool = [
        threading.Thread(target=Drainer(rt).run, args=(stop,), name=f"bridge-drainer-{n}")
        for n in range(max(threads, 1))
    ]
    for thread in pool:
        thread.start()
    try:
        _run_jobs(rt)
    finally:
        stop.set()
        for thread in pool:
            thread.join(timeout=60)


def _jobs(rt: Runtime, kind: type[SimpleWorker] = SimpleWorker) -> SimpleWorker:
    return kind(
        [queue.jobs_queue(rt.redis)],
        connection=rt.redis,
        log_job_description=False,  # descriptions are safe, but keep logs to ids by policy
    )


def _run_jobs(rt: Runtime) -> None:
    """rq's worker loop, started again after a lost Redis connection (rq itself exits)."""
    backoff = 0.5
    while True:
        try:
            _jobs(rt).work(with_scheduler=True, logging_level="WARNING")
            return  # a warm shutdown (SIGTERM, SIGINT)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.error("rq lost Redis (%s); starting again in %.1fs", type(exc).__name__, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
