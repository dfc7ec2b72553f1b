"""Prometheus metrics: what flows through the bridge, and how the queue stands.

Counters and histograms live in the process that counts (the web process counts events
received; workers count actions, CRM calls and timer lag). Under several processes, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by the processes of one machine
*before they start* (prometheus-client reads it on import): each process writes its own
files there and ``/metrics`` adds them up, which is how the figures stay right under several
gunicorn workers (docs/operations.md). The queue's depth, scheduled timers, failed jobs and
the oldest overdue timer are read from Redis when ``/metrics`` is scraped.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from rq.registry import FailedJobRegistry

from bridge import queue, timers
from bridge.spool import Spool

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS = Counter(
    "bridge_events_received_total",
    "Calls received from CRMs, by CRM and result (queued, duplicate, rejected)",
    ["crm", "result"],
)
ACTIONS = Counter(
    "bridge_actions_total",
    "Actions carried out, by kind and result (done, failed, pending: to retry)",
    ["kind", "result"],
)
ALERTS = Counter(
    "bridge_alerts_total",
    "Alerts journaled (a person must act), by CRM and source (pipeline, check:<name>)",
    ["crm", "source"],
)
CRM_CALLS = Histogram(
    "bridge_crm_call_seconds",
    "Time of the connectors' calls to a CRM, by CRM and operation",
    ["crm", "operation"],
)
CRM_ERRORS = Counter(
    "bridge_crm_call_errors_total",
    "Connector calls that raised, by CRM, operation and error",
    ["crm", "operation", "error"],
)
TIMER_LAG = Histogram(
    "bridge_timer_lag_seconds",
    "How late SLA timers fire after their due time",
    buckets=(0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf")),
)

MEASURED = (
    "fetch",
    "fetch_many",
    "execute_many",
    "subject_owner",
    "subject_owners",
    "activity_of",
    "execute",
    "find_done",
    "find",
    "contact_email",
    "user_email",
)
"""The connector operations whose calls are timed (each is one or a few CRM requests)."""


def instrument(connector: Any) -> Any:
    """Time a connector's operations and count their errors (the same object, returned)."""
    for name in MEASURED:
        method = getattr(connector, name, None)
        if method is not None:
            setattr(connector, name, _timed(connector.name, name, method))
    return connector


def _timed(crm: str, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            CRM_ERRORS.labels(crm, operation, type(exc).__name__).inc()
            raise
        finally:
            CRM_CALLS.labels(crm, operation).observe(time.perf_counter() - started)

    return timed


class QueueCollector:
    """The queue as it stands, read from Redis at scrape time (no tenant names)."""

    def __init__(self, connection: redis.Redis, spool: Spool | None = None) -> None:
        self.connection = connection
        self.spool = spool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Waiting events, scheduled timers, failed jobs, the spool, the oldest overdue timer."""
        waiting = queue.EventQueue(self.connection).waiting()
        yield _gauge("bridge_queue_waiting", "Events waiting in the tenants' streams", waiting)
        scheduled = int(self.connection.zcard(timers.KEY))
        yield _gauge("bridge_queue_scheduled", "Timers scheduled for later", scheduled)
        failed = FailedJobRegistry(queue=queue.jobs_queue(self.connection)).count
        yield _gauge("bridge_queue_failed", "Jobs (sweeps, checks) that failed", failed)
        if self.spool is not None:
            spooled = self.spool.size()
            yield _gauge("bridge_spool_events", "Events kept on disk while Redis was down", spooled)
        now = datetime.now(UTC).timestamp()
        first = self.connection.zrange(timers.KEY, 0, 0, withscores=True)
        oldest = first[0][1] if first else now  # timers are scored by their due time
        yield _gauge(
            "bridge_timer_overdue_seconds",
            "How long the oldest scheduled timer is past due (0: none is)",
            max(0.0, now - oldest),
        )


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def exposition(connection: redis.Redis, spool: Spool | None = None) -> tuple[bytes, str]:
    """The text ``/metrics`` answers: every process's counters and the queue's gauges."""
    live = CollectorRegistry()
    live.register(QueueCollector(connection, spool))
    if os.environ.get(MULTIPROC_ENV):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return generate_latest(counted) + generate_latest(live), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Tell prometheus-client a worker process is gone (gunicorn's ``child_exit`` hook)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
