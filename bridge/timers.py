"""SLA timers: one sorted set of due times, fired by every worker's loop.

A timer is only a reminder to look again: when it comes due it becomes a ``timer.due`` entry of
its tenant's stream, and the pipeline re-reads the record and re-evaluates the rule's
``unless`` on fresh data (a timer never acts on stale data).

A timer is one member of ``bridge:timers`` (tenant, record, rule, step and stay, joined by a
unit separator: some 50 bytes) scored by its due time, so a million timers take about 100 MB
of Redis, scheduling is one ``ZADD`` for a whole plan, and scheduling the same timer again is a
no-op while another due time moves it (O(log n)). Firing takes the due members and appends them
to the streams in one Lua script: a timer is moved exactly once, whichever worker fires it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis

from bridge.models import Timer
from bridge.queue import BELL, TENANTS

KEY = "bridge:timers"
SEP = "\x1f"
CHUNK = 10_000

# KEYS: the timers set, the tenants set, the bell. ARGV: now (unix seconds), limit, prefix.
# Moves due timers to their tenants' streams; returns how many moved.
_FIRE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  local member, score = due[i], due[i + 1]
  local tenant = string.sub(member, 1, string.find(member, '\\31', 1, true) - 1)
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', ARGV[3] .. tenant, '*', 'k', '"timer"', 'm', cjson.encode(member),
             'due', cjson.encode(score))
  redis.call('SADD', KEYS[2], tenant)
  redis.call('RPUSH', KEYS[3], tenant)
end
if #due > 0 then redis.call('LTRIM', KEYS[3], -256, -1) end
return #due / 2
"""


def member(tenant: str, timer: Timer) -> str:
    """The timer's member of the sorted set: what identifies it, not when it is due."""
    parts = (tenant, timer.ref.kind, timer.ref.id, timer.rule, str(timer.step), timer.stay)
    return SEP.join(parts)


def parse(text: str) -> tuple[str, str, str, str]:
    """A member as ``(tenant, kind, record id, subject)``; the subject is ``rule|step|stay``."""
    tenant, kind, record_id, rule, step, stay = text.split(SEP)
    return tenant, kind, record_id, f"{rule}|{step}|{stay}"


def schedule(connection: redis.Redis, tenant: str, timers: Iterable[Timer]) -> int:
    """Schedule (or move) timers in one round trip per chunk; returns how many were new or
    moved."""
    scores = {member(tenant, t): t.due.timestamp() for t in timers}
    changed = 0
    items = list(scores.items())
    for start in range(0, len(items), CHUNK):
        changed += int(connection.zadd(KEY, dict(items[start : start + CHUNK]), ch=True))
    return changed


def scheduled_due(connection: redis.Redis, tenant: str, timer: Timer) -> datetime | None:
    """When a timer is due, or None when it is not scheduled."""
    score = connection.zscore(KEY, member(tenant, timer))
    return None if score is None else datetime.fromtimestamp(score, UTC)


class Firing:
    """Moves due timers to the streams (every worker runs one; the script makes it safe)."""

    def __init__(self, connection: redis.Redis, stream_prefix: str) -> None:
        self.redis = connection
        self.prefix = stream_prefix
        self._fire = connection.register_script(_FIRE)

    def fire_due(self, now: datetime, limit: int = 1000) -> int:
        """Move up to ``limit`` timers due by ``now``; returns how many moved."""
        keys = [KEY, TENANTS, BELL]
        return int(self._fire(keys=keys, args=[now.timestamp(), limit, self.prefix]))

    def next_due(self) -> float | None:
        """Seconds since the epoch of the earliest timer, or None."""
        first = self.redis.zrange(KEY, 0, 0, withscores=True)
        return float(first[0][1]) if first else None


def pending(connection: redis.Redis, tenant: str | None = None) -> list[tuple[str, datetime]]:
    """Scheduled timers (member, due), earliest first; of one tenant or of all."""
    found: list[Any] = connection.zrange(KEY, 0, -1, withscores=True)
    out = [(m.decode(), datetime.fromtimestamp(s, UTC)) for m, s in found]
    return [(m, due) for m, due in out if tenant is None or m.split(SEP, 1)[0] == tenant]
