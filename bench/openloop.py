"""An open-loop HTTP load generator: requests leave at fixed times whatever the answers.

Request ``i`` is scheduled at ``start + i / rate`` and its latency is measured from that
scheduled time, not from when it actually left: a server (or a generator) that falls behind
cannot slow the load down and hide its queue (no coordinated omission, unlike a closed loop such
as wrk's). The generator checks itself: it reports whether it held its rate, i.e. whether the
requests left on time (how late the 99th percentile left, and the rate actually offered).

One thread, non-blocking sockets on an ``epoll`` selector, one TCP connection per request with
``Connection: close`` (gunicorn's sync workers close after each answer anyway): some tens of
microseconds of Python per request, so that a couple of thousand requests per second take a
fraction of a core that the servers under test share.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness import percentile

LATE = 0.005
"""Seconds a request may leave after its time, at the 99th percentile, for the rate to count
as held: half the ingress' p99 goal (10 ms); a generator later than that would measure
mostly itself."""
TIMEOUT = 10.0
"""Seconds after its time a request counts as failed."""


@dataclass
class Result:
    """What an open-loop run measured (seconds)."""

    rate: float
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    offered: float = 0.0
    """The rate at which requests actually left."""

    @property
    def held(self) -> bool:
        """Did the requests leave on time, at the rate asked?"""
        return percentile(self.lags, 0.99) <= LATE and self.offered >= 0.98 * self.rate

    def p(self, share: float) -> float:
        """A latency quantile in milliseconds."""
        return 1000 * percentile(self.latencies, share)

    def fail(self, why: str) -> None:
        """Count a failed request."""
        self.errors[why] = self.errors.get(why, 0) + 1

    def describe(self) -> str:
        """One line: latencies, how the generator kept time, errors."""
        line = f"p50 {self.p(0.5):.1f} ms, p99 {self.p(0.99):.1f} ms, {len(self.latencies)} ok"
        line += f"; offered {self.offered:,.0f}/s of {self.rate:,.0f}/s"
        line += f", 99% left within {1000 * percentile(self.lags, 0.99):.2f} ms of their time"
        if self.errors:
            line += f"; errors {self.errors}"
        if not self.held:
            line += "; the generator could NOT hold its rate (the latencies include its lag)"
        return line


@dataclass
class _Request:
    at: float
    data: bytes
    sock: socket.socket
    answer: bytes = b""


def run(url: str, body: Callable[[int], bytes], rate: float, seconds: float) -> Result:
    """POST ``body(i)`` (form-encoded) to ``url`` at ``rate`` per second for ``seconds``."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n"
    )
    payloads = [body(i) for i in range(int(rate * seconds))]
    datas = [head.format(len(p)).encode() + p for p in payloads]
    return _Loop(address, rate).run(datas)


class _Loop:
    def __init__(self, address: tuple[str, int], rate: float) -> None:
        self.address, self.rate = address, rate
        self.selector = selectors.DefaultSelector()
        self.result = Result(rate)
        self.open: dict[int, _Request] = {}

    def run(self, datas: list[bytes]) -> Result:
        start = time.monotonic() + 0.05
        sent, first, last, swept = 0, 0.0, 0.0, start
        while sent < len(datas) or self.open:
            now = time.monotonic()
            while sent < len(datas) and start + sent / self.rate <= now:
                at = start + sent / self.rate
                self._send(at, datas[sent], now)
                first, last = first or now, now
                sent += 1
            due = start + sent / self.rate if sent < len(datas) else now + 0.05
            for key, events in self.selector.select(max(due - time.monotonic(), 0)):
                self._ready(key.data, events)
            if time.monotonic() - swept > 0.1:
                swept = self._expire(time.monotonic())
        self.selector.close()
        self.result.offered = (sent - 1) / (last - first) if last > first else 0.0
        return self.result

    def _send(self, at: float, data: bytes, now: float) -> None:
        self.result.lags.append(now - at)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.result.fail(errno.errorcode.get(code, str(code)))
            return
        request = _Request(at, data, sock)
        self.open[sock.fileno()] = request
        self.selector.register(sock, selectors.EVENT_WRITE, request)

    def _ready(self, request: _Request, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                request.sock.sendall(request.data)  # a few hundred bytes: one send
                self.selector.modify(request.sock, selectors.EVENT_READ, request)
                return
            chunk = request.sock.recv(65536)
        except OSError as exc:
            self._close(request)
            self.result.fail(type(exc).__name__)
            return
        if chunk:
            request.answer += chunk
            return
        self._close(request)
        if request.answer.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            self.result.latencies.append(time.monotonic() - request.at)
        else:
            self.result.fail(request.answer[:12].decode(errors="replace") or "no answer")

    def _expire(self, now: float) -> float:
        for request in [r for r in self.open.values() if now - r.at > TIMEOUT]:
            self._close(request)
            self.result.fail("timeout")
        return now

    def _close(self, request: _Request) -> None:
        self.open.pop(request.sock.fileno(), None)
        self.selector.unregister(request.sock)
        request.sock.close()
