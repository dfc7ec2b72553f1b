"""A token bucket shared through Redis, so every worker on every machine spends one CRM budget.

The CRMs count requests per account, not per client process: several rq workers on several
machines calling one portal must draw from the same bucket, or together they overrun the limit
that each of them alone respects. The bucket lives in one Redis hash and is updated by a Lua
script, so the read-refill-take step is atomic however many workers race for it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import redis

KEY_PREFIX = "bridge:ratelimit:"

# KEYS[1]: the bucket hash {tokens, ts}. ARGV: rate (tokens/s), burst, ttl (ms), now (us, or ""
# for Redis TIME). Returns 0 if a token was taken, else the microseconds until one is due.
# Time is kept in integer microseconds: ~1.7e15 is exact in a double, while seconds with a
# fraction would lose the sub-microsecond part, and string.format keeps the 14-digit default
# number-to-string conversion of redis.call from rounding ts to 100 us.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
if tokens < 1 then
  return math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens - 1),
           'ts', string.format('%.0f', ts))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
"""


class RateLimitTimeout(TimeoutError):
    """No slot in the bucket could be had within the caller's timeout."""


class RateLimiter:
    """A token bucket in Redis: ``burst`` requests at once when full, then ``rate`` per second.

    Any number of instances, in any number of processes, that use the same ``key`` share one
    budget. The bucket refills by Redis ``TIME``, so the workers' clocks need not agree.

    Args:
        redis: Client of the Redis that all sharing workers use.
        key: Names the budget (a CRM names it: ``CRM.limiter_key``); stored as
            ``bridge:ratelimit:<key>``.
        rate: Tokens added per second.
        burst: Bucket capacity, i.e. requests allowed back to back after an idle spell.
        clock: Seconds since an epoch, used instead of Redis ``TIME`` by :meth:`try_acquire`;
            meant for tests. The key's TTL still runs in real time.

    Raises:
        ValueError: ``rate`` is not positive or ``burst`` is below 1.
    """

    def __init__(
        self,
        redis: redis.Redis,
        key: str,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not rate > 0:  # also rejects NaN
            raise ValueError(f"rate must be positive, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.key = KEY_PREFIX + key
        self.redis = redis
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        # A bucket left alone for burst/rate seconds is full again, which is exactly what a
        # missing key means, so the hash can expire then (plus a second of slack).
        self._ttl_ms = math.ceil(self.burst / self.rate * 1000) + 1000
        self._script = redis.register_script(_LUA)

    def try_acquire(self) -> float:
        """Take a slot if one is free.

        Returns:
            0.0 if a slot was taken; otherwise the seconds until one is due, nothing taken.
        """
        now = "" if self._clock is None else str(round(self._clock() * 1_000_000))
        wait_us = self._script(keys=[self.key], args=[self.rate, self.burst, self._ttl_ms, now])
        return int(wait_us) / 1_000_000

    def acquire(self, timeout: float = 60.0) -> None:
        """Block until a slot is taken.

        Args:
            timeout: Seconds to wait at most.

        Raises:
            RateLimitTimeout: as soon as the next slot is due only after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while (wait := self.try_acquire()) > 0:
            time.sleep(self._pause(wait, deadline))

    async def acquire_async(self, timeout: float = 60.0) -> None:
        """Like :meth:`acquire`, but sleeps with :func:`asyncio.sleep`.

        The Redis round trip itself is synchronous: one short call per request, cheaper than
        handing it to a thread.

        Raises:
            RateLimitTimeout: as soon as the next slot is due only after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while (wait := self.try_acquire()) > 0:
            await asyncio.sleep(self._pause(wait, deadline))

    def _pause(self, wait: float, deadline: float) -> float:
        # Other workers can only take slots, never add them, so a slot due after the deadline
        # cannot come sooner: give up now instead of sleeping towards a certain failure.
        if time.monotonic() + wait > deadline:
            raise RateLimitTimeout(f"{self.key}: next slot in {wait:.3f}s, past the timeout")
        return wait
