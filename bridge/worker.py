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
from rq.timeouts import TimerDeathPenalty

from bridge import queue
from bridge.masking import install_log_redaction
from bridge.runtime import Runtime, install


class ThreadWorker(SimpleWorker):
    """A worker that may run outside the main thread (``bridge try``'s page): it leaves the
    process's signals alone, which only the main thread may handle, and times jobs out with
    rq's timer instead of SIGALRM."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def run_worker(
    rt: Runtime, *, burst: bool = False, with_scheduler: bool = True, in_thread: bool = False
) -> bool:
    """Work the events queue until stopped (or, with ``burst``, until it is empty).

    ``in_thread``: the caller may be any thread; Ctrl-C is then the caller's to handle.
    """
    install(rt)
    install_log_redaction()
    worker = (ThreadWorker if in_thread else SimpleWorker)(
        [queue.events_queue(rt.redis)],
        connection=rt.redis,
        log_job_description=False,  # descriptions are safe, but keep logs to ids by policy
    )
    logging.getLogger("rq.worker").setLevel(logging.WARNING if burst else logging.INFO)
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
