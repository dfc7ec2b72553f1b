"""Pieces a CRM sandbox needs besides its own wire format.

A background poster for outgoing webhooks (a CRM never posts inside the API call that caused
the change), fault injection by path prefix, and a sliding-window request counter for rate
limits. Written for the amoCRM sandbox; nothing here knows a CRM.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

FORM = "application/x-www-form-urlencoded"


@dataclass
class Post:
    """One webhook POST waiting in the queue; ``record`` becomes the delivery entry."""

    url: str
    body: str
    record: dict[str, Any]
    on_done: Callable[[dict[str, Any]], None] | None = None


class Poster:
    """Posts queued form bodies from one worker thread, one attempt each, and records them.

    ``deliveries`` gets ``record`` plus ``status`` (HTTP code, ``None`` on a network error or
    timeout, then ``error`` says why) and ``time`` (``time.monotonic()`` when it was sent).
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[Post | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._worker: threading.Thread | None = None
        self.lose_every = 0  # lose every n-th post (0: none), as a CRM's outage would
        self._posted = 0

    def start(self) -> None:
        """Start the worker; posts queued before are sent then."""
        self._worker = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Send what is queued, then stop the worker."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None

    def put(self, post: Post) -> None:
        """Queue one POST."""
        with self._idle:
            self._pending += 1
        self._queue.put(post)

    def wait(self, timeout: float) -> None:
        """Block until nothing is queued or in flight.

        Raises:
            TimeoutError: posts still pending after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending} webhook post(s) still undelivered")
                self._idle.wait(remaining)

    def send(self, url: str, body: str) -> requests.Response:
        """POST ``body`` form-encoded, synchronously."""
        headers = {"Content-Type": FORM}
        return requests.post(url, data=body.encode(), headers=headers, timeout=self.timeout)

    def _loop(self) -> None:
        while (post := self._queue.get()) is not None:
            try:
                self._deliver(post)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, post: Post) -> None:
        record = {**post.record, "url": post.url, "status": None, "time": time.monotonic()}
        self._posted += 1
        if self.lose_every and self._posted % self.lose_every == 0:
            record["error"] = "lost on purpose (lose_every)"
            with self._lock:
                self.deliveries.append(record)
            return
        try:
            record["status"] = self.send(post.url, post.body).status_code
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.deliveries.append(record)
        if post.on_done is not None:
            post.on_done(record)


@dataclass
class Fault:
    """A planned failure: the next ``remaining`` requests under ``prefix`` get ``status``."""

    prefix: str
    remaining: int
    status: int
    body: Any = None


class FaultBook:
    """``fail_next`` bookkeeping: faults are taken first-planned first, one per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, prefix: str, times: int, status: int, body: Any = None) -> None:
        """Plan ``times`` failures of requests whose path starts with ``prefix``."""
        with self._lock:
            self._faults.append(Fault(prefix, times, status, body))

    def take(self, path: str) -> Fault | None:
        """The fault this request must suffer, if any (its count goes down by one)."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    return fault
        return None


@dataclass
class RateWindow:
    """Admits at most ``limit`` calls per ``window`` seconds (sliding); ``None`` = unlimited."""

    limit: int | None
    window: float = 1.0
    _calls: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> bool:
        """Count a call if it fits the window; ``False`` means answer "too many requests"."""
        if self.limit is None:
            return True
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0] <= now - self.window:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                return False
            self._calls.append(now)
            return True
