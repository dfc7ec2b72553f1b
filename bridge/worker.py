"""Running rq workers for the bridge.

The class is :class:`rq.SimpleWorker` on purpose: rq's default worker forks a process per job,
which costs milliseconds per event and throws away what the process holds (loaded config,
connectors, the rate limiter's script). Our jobs are short, I/O-bound and hold no state
between runs, so running them in the worker's own process is safe; scale with more worker
processes (docs/architecture.md).
"""

from __future__ import annotations

import logging

from rq import SimpleWorker

from bridge import queue
from bridge.masking import install_log_redaction
from bridge.runtime import Runtime, install


def run_worker(rt: Runtime, *, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work the events queue until stopped (or, with ``burst``, until it is empty)."""
    install(rt)
    install_log_redaction()
    worker = SimpleWorker(
        [queue.events_queue(rt.redis)],
        connection=rt.redis,
        log_job_description=False,  # descriptions are safe, but keep logs to ids by policy
    )
    logging.getLogger("rq.worker").setLevel(logging.WARNING if burst else logging.INFO)
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
