"""How many ``RateLimiter.try_acquire`` calls per second one client gets from the local Redis.

Every CRM request pays one such call, so this is the limiter's overhead per request. Both
outcomes are timed: a granted call also writes the hash, a refused one only reads it.

Usage: ``.venv/bin/python bench/bench_ratelimit.py [redis-url]`` (default db 13, flushed).
"""

from __future__ import annotations

import sys
import time

import redis

from bridge.ratelimit import RateLimiter

SECONDS_PER_CASE = 1.5


def calls_per_second(limiter: RateLimiter, seconds: float = SECONDS_PER_CASE) -> float:
    """Call ``try_acquire`` for ``seconds`` and return the achieved rate."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        limiter.try_acquire()
        calls += 1
    return calls / (time.perf_counter() - start)


def main(url: str = "redis://127.0.0.1:6379/13") -> None:
    """Run the granted and the refused case and print both figures."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    # A rate far above what one client can ask for keeps every call granted.
    granted = calls_per_second(RateLimiter(client, "bench:granted", rate=1e9, burst=1))
    # An hour per token: after the first call, every call is refused.
    refused = calls_per_second(RateLimiter(client, "bench:refused", rate=1 / 3600, burst=1))
    client.flushdb()
    print(f"try_acquire, granted: {granted:,.0f} calls/s ({1e6 / granted:.0f} us/call)")
    print(f"try_acquire, refused: {refused:,.0f} calls/s ({1e6 / refused:.0f} us/call)")


if __name__ == "__main__":
    main(*sys.argv[1:])
