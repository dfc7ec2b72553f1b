"""The queue: one Redis stream of events per tenant, and an rq queue for the bridge's jobs.

A webhook costs the ingress one Redis round trip: a Lua script checks the delivery's dedup key,
appends the event to its tenant's stream and rings a doorbell, atomically. Workers take a
tenant's stream under a lease (one worker per tenant at a time, so a record's events are never
processed out of order, while tenants run in parallel), read up to a batch of entries through a
consumer group, and acknowledge them once they are journaled and acted on. An entry read but
not acknowledged (its worker was killed, or its CRM is down) stays in the group's pending list
and is claimed again by whoever takes the lease next: nothing the queue accepted is lost.

An event whose CRM failed for it is **parked**: moved, in one Lua step, from the stream to a
sorted set by the time its retry is due, while the tenant's other records go on. Events of a
record with a parked event are parked behind it (a record's events stay in order); they come
back, oldest first, at the head of a later batch.

Entries carry ids and names only, never personal data. What does not fit the flow of events
(sweeps, the CRMs' checks, reconciliation) runs as rq jobs on :data:`JOBS`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

log = logging.getLogger(__name__)

PREFIX = "bridge:q:"
TENANTS = PREFIX + "tenants"
"""The set of tenants that have a stream."""
BELL = PREFIX + "bell"
"""A list the ingress pushes a tenant's name to, so that an idle worker wakes at once."""
GROUP = "workers"
BATCH = 50
"""Entries a worker takes at once (a Bitrix24 ``batch`` holds 50 commands)."""
JOBS = "bridge-jobs"
"""The rq queue of sweeps, checks and reconciliation."""
DEDUP_TTL = 7 * 24 * 3600
"""How long a delivered event's key blocks a duplicate (Bitrix24 never resends later)."""
LEASE_MS = int(os.environ.get("BRIDGE_LEASE_MS", "20000"))
"""A worker's claim on a tenant; renewed while it works, so a killed worker's tenant is taken
over within this time (and its unacknowledged entries with it)."""

# KEYS: stream, dedup key, tenants set, bell. ARGV: tenant, dedup ttl, the entry's JSON.
# Returns the entry id, or 0 for a duplicate of an entry still waiting.
_ADMIT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[4]) < 256 then redis.call('RPUSH', KEYS[4], ARGV[1]) end
return id
"""
# KEYS: stream, parked, counts, dues. ARGV: entry id, member, record, due ms (-1: behind the
# record's parked events), then the same four again for each entry. Moves entries out of the
# stream into the parked set in one step, so an entry is always in one of the two.
_PARK = (
    """
for i = 1, #ARGV, 4 do
  local record, due = ARGV[i + 2], tonumber(ARGV[i + 3])
  if due < 0 then due = tonumber(redis.call('HGET', KEYS[4], record) or '0') end
  if redis.call('ZADD', KEYS[2], due, ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', KEYS[3], record, 1)
  end
  if due > tonumber(redis.call('HGET', KEYS[4], record) or '0') then
    redis.call('HSET', KEYS[4], record, due)
  end
  if string.sub(ARGV[i], 1, 2) ~= 'p:' then
    redis.call('XACK', KEYS[1], '"""
    + GROUP
    + """', ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""
)
# KEYS: parked, counts, dues. ARGV: members. Forgets parked events that are done.
_UNPARK = """
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local record = string.match(ARGV[i], '^[^:]*:(.*)$')
    if redis.call('HINCRBY', KEYS[2], record, -1) <= 0 then
      redis.call('HDEL', KEYS[2], record)
      redis.call('HDEL', KEYS[3], record)
    end
  end
end
return 1
"""
# KEYS: lease. ARGV: owner, ms. Renews a lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lease. ARGV: the dead owner, the new owner, ms. Takes a lease only from that owner.
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""
# KEYS: lease. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Admission:
    """The admission script, sent straight on a connection kept for it.

    redis-py's ``Script`` call goes through the client's pool and retry wrapper and its
    observability hooks on every command: on redis-py 8 with hiredis, some 25 µs of a
    webhook's 177 µs of CPU (in-process, docs/performance.md "Ingress"). This sends the same
    ``EVALSHA`` on a connection the client's pool made (its address, password, timeouts and
    retry policy) and that is kept here, checked before each command as the pool checks
    the connections it hands out (one Redis closed is made again), and sends the script
    itself when Redis lost it (restarted). One connection per process, behind a lock: a sync
    gunicorn worker has one thread; a threaded server's requests take turns.
    """

    def __init__(self, client: redis.Redis, script: str) -> None:
        self.pool = client.connection_pool
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self._lock = threading.Lock()
        self._connection: Any = None
        self._in_step = False  # the kept connection read the whole reply of its last command

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        """Run the script; returns its reply.

        Raises:
            redis.RedisError: Redis could not be reached within the client's retries, or the
                script failed.
        """
        with self._lock:
            connection = self._connected()
            try:
                found = connection.retry.call_with_retry(
                    lambda: self._run(connection, keys, args), lambda _: connection.disconnect()
                )
            except redis.ResponseError:
                self._in_step = True  # an error reply, read whole
                raise
            except BaseException:
                # cut off between the command and its reply (a timeout, the worker's own
                # timeout): the reply may still come, so it must not be read as the next one's
                connection.disconnect()
                raise
            self._in_step = True
            return found

    def _connected(self) -> Any:
        # taken from the pool (connected and checked) and never given back, so that closing
        # the client closes it; one taken before a fork belongs to the parent
        if self._connection is None or self._connection.pid != os.getpid():
            self._connection = self.pool.get_connection()
        elif self._in_step and _stale(self._connection):
            # as the pool checks a connection it hands out: one Redis closed (restarted, an
            # idle timeout) is made again by the command
            self._connection.disconnect()
        self._in_step = False
        return self._connection

    def _run(self, connection: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._send(connection, "EVALSHA", self.sha, keys, args)
        except redis.exceptions.NoScriptError:
            return self._send(connection, "EVAL", self.script, keys, args)

    @staticmethod
    def _send(connection: Any, command: str, script: str, keys: list[str], args: list[Any]) -> Any:
        connection.send_packed_command(
            connection.pack_command(command, script, len(keys), *keys, *args)
        )
        return connection.read_response()


def _stale(connection: Any) -> bool:
    try:
        return bool(connection.can_read())  # a reply nobody asked for, or the end of the stream
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def stream_key(tenant: str) -> str:
    """The stream of a tenant's events."""
    return f"{PREFIX}{tenant}"


def now_ms() -> int:
    """The wall clock in ms, which parked events' due times are read against (Redis' own
    expiries, like a hold's, run on the same clock)."""
    return int(time.time() * 1000)


def parked_keys(tenant: str) -> list[str]:
    """A tenant's parked events (a sorted set by due time), and per record their count and
    the latest due time."""
    return [f"{PREFIX}{name}:{tenant}" for name in ("parked", "parked-n", "parked-due")]


def record_key(kind: str, record_id: str) -> str:
    """What keeps a record's events in order among the parked ones: ``kind:id``."""
    return f"{kind}:{record_id}"


def dedup_key(tenant: str, key: str) -> str:
    """The Redis key that folds a repeated delivery while the first still waits."""
    return f"bridge:dedup:{tenant}:{key}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:  # no procfs: never judge another process dead
        return ""


def owner_name() -> str:
    """A name for one lease holder: host, PID namespace, process id and a random part, so
    that a worker on the same machine can tell the holder's process is gone."""
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def dead_here(owner: str) -> bool:
    """Is ``owner`` a process of this machine (same host and PID namespace) that is gone?
    A worker killed and restarted by its supervisor then takes its tenants back at once,
    not after the lease runs out."""
    host, _, rest = owner.partition(":")
    namespace, _, rest = rest.partition(":")
    pid = rest.partition(":")[0]
    here = _pid_namespace()
    if host != socket.gethostname() or not here or namespace != here or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


@dataclass(frozen=True)
class Entry:
    """One stream entry: an event received, a timer come due, or a replay of an event."""

    id: str
    fields: dict[str, Any]

    @property
    def kind(self) -> str:
        """``event``, ``timer`` or ``replay``."""
        return str(self.fields.get("k", "event"))


class LeaseLost(Exception):
    """Another worker took the tenant while this one worked on a batch: the batch stops
    before it writes to the CRM and is left as it was, for the new holder."""


@dataclass(frozen=True)
class Parked:
    """An event set aside: its CRM failed for it (it waits ``delay`` seconds), or an earlier
    event of its record waits (``delay`` None: it goes behind that one)."""

    entry_id: str
    event_id: int
    record: str  # record_key(kind, id): what keeps a record's events in order
    delay: float | None


def parked_entry(member: str) -> Entry:
    """The entry a parked event is taken up again as (the journal holds the rest)."""
    return Entry(f"p:{member}", {"k": "retry", "event": int(member.partition(":")[0])})


class EventQueue:
    """The queue on one Redis connection (the scripts registered once)."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._admit = Admission(connection, _ADMIT)
        self._renew = connection.register_script(_RENEW)
        self._release = connection.register_script(_RELEASE)
        self._take_over = connection.register_script(_TAKE_OVER)
        self._park = connection.register_script(_PARK)
        self._unpark = connection.register_script(_UNPARK)
        self._groups: set[str] = set()

    # -- the ingress side -------------------------------------------------------------------

    def admit(self, tenant: str, key: str, fields: dict[str, Any]) -> str | None:
        """Append an event unless a delivery with the same key still waits.

        Returns:
            The entry id, or None for a duplicate.

        Raises:
            redis.RedisError: Redis could not be reached (the caller spools the event).
        """
        keys = [stream_key(tenant), dedup_key(tenant, key), TENANTS, BELL]
        found = self._admit(keys, [tenant, DEDUP_TTL, _encode(fields)])
        return found.decode() if found else None

    def append(self, tenant: str, fields: dict[str, Any]) -> str:
        """Append an entry without a dedup key (timers, replays, reconciliation)."""
        with self.redis.pipeline() as pipe:
            pipe.xadd(stream_key(tenant), {"e": _encode(fields)})
            pipe.sadd(TENANTS, tenant)
            pipe.rpush(BELL, tenant)
            pipe.ltrim(BELL, -256, -1)
            entry_id = pipe.execute()[0]
        return entry_id.decode()

    # -- the worker side --------------------------------------------------------------------

    def tenants(self) -> list[str]:
        """Every tenant with a stream, shuffled so that no tenant always comes first."""
        names = [t.decode() for t in self.redis.smembers(TENANTS)]
        random.shuffle(names)
        return names

    def wait(self, timeout: float) -> None:
        """Block until the doorbell rings or ``timeout`` seconds pass."""
        self.redis.blpop([BELL], timeout=max(timeout, 0.01))

    def lease(self, tenant: str, owner: str) -> bool:
        """Take the tenant for ``owner``, unless another worker has it (a holder that was a
        process of this machine and is gone no longer counts)."""
        key = f"{PREFIX}lease:{tenant}"
        if self.redis.set(key, owner, nx=True, px=LEASE_MS):
            return True
        holder = self.redis.get(key)
        if holder is None or not dead_here(holder.decode()):
            return False
        taken = bool(self._take_over(keys=[key], args=[holder, owner, LEASE_MS]))
        if taken:
            log.info(
                "%s: took over the lease of %s, a process that is gone", tenant, holder.decode()
            )
        return taken

    def renew(self, tenants: Iterable[str], owner: str) -> None:
        """Extend the leases ``owner`` still holds."""
        for tenant in tenants:
            self.keep(tenant, owner)

    def keep(self, tenant: str, owner: str) -> bool:
        """Extend ``owner``'s lease of the tenant; False when it is no longer ours (Redis was
        away longer than a lease, and another worker took the tenant)."""
        return bool(self._renew(keys=[f"{PREFIX}lease:{tenant}"], args=[owner, LEASE_MS]))

    def release(self, tenant: str, owner: str) -> None:
        """Give the tenant back."""
        self._release(keys=[f"{PREFIX}lease:{tenant}"], args=[owner])

    def hold(self, tenant: str, seconds: float, reason: str) -> None:
        """Keep workers off a tenant for a while (its CRM failed; its entries stay pending)."""
        ms = max(int(seconds * 1000), 1)
        self.redis.set(f"{PREFIX}hold:{tenant}", reason, px=ms)

    def held(self, tenant: str) -> bool:
        """Is the tenant on hold?"""
        return bool(self.redis.exists(f"{PREFIX}hold:{tenant}"))

    def held_for(self, tenant: str) -> float:
        """Seconds the tenant's hold still lasts (0 when none)."""
        return max(int(self.redis.pttl(f"{PREFIX}hold:{tenant}")), 0) / 1000

    def resume(self, tenant: str) -> None:
        """End a hold now (new credentials, an admin's replay)."""
        self.redis.delete(f"{PREFIX}hold:{tenant}")
        self.redis.rpush(BELL, tenant)

    def take(self, tenant: str, consumer: str, count: int) -> list[Entry]:
        """Up to ``count`` entries: first parked events come due, then those left pending by
        a worker that held the lease before (killed mid-batch), then new ones."""
        entries = self._due(tenant, count)
        stream = stream_key(tenant)
        self._ensure_group(stream)
        if len(entries) < count:
            _, claimed, *_ = self.redis.xautoclaim(
                stream, GROUP, consumer, 0, "0-0", count=count - len(entries)
            )
            entries += [Entry(i.decode(), _decode(f)) for i, f in claimed if i and f]
        if len(entries) < count:
            found = self.redis.xreadgroup(
                GROUP, consumer, {stream: ">"}, count=count - len(entries)
            )
            entries += [Entry(i.decode(), _decode(f)) for _, items in found for i, f in items]
        return entries

    def _due(self, tenant: str, count: int) -> list[Entry]:
        # oldest event first: a record's parked events come back in the order they arrived
        members = self.redis.zrangebyscore(
            parked_keys(tenant)[0], "-inf", now_ms(), start=0, num=count
        )
        names = sorted((m.decode() for m in members), key=lambda m: int(m.partition(":")[0]))
        return [parked_entry(m) for m in names]

    def done(self, tenant: str, entry_ids: list[str]) -> None:
        """Acknowledge and delete entries (the journal holds them from now on)."""
        members = [i[2:] for i in entry_ids if i.startswith("p:")]
        if members:
            self._unpark(keys=parked_keys(tenant)[:3], args=members)
        ids = [i for i in entry_ids if not i.startswith("p:")]
        if ids:
            stream = stream_key(tenant)
            with self.redis.pipeline() as pipe:
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
                pipe.execute()

    def park(self, tenant: str, parked: Sequence[Parked]) -> None:
        """Set events aside until their delay passes; an event with no delay goes behind its
        record's parked events. Their stream entries are acknowledged in the same step."""
        if not parked:
            return
        now = now_ms()
        args: list[Any] = []
        for p in parked:
            due = -1 if p.delay is None else now + int(p.delay * 1000)
            member = p.entry_id[2:] if p.entry_id.startswith("p:") else f"{p.event_id}:{p.record}"
            args += [p.entry_id, member, p.record, due]
        self._park(keys=[stream_key(tenant), *parked_keys(tenant)], args=args)

    def parked_counts(self, tenant: str, records: Sequence[str]) -> list[int]:
        """How many parked events each of these records has."""
        if not records:
            return []
        found = self.redis.hmget(parked_keys(tenant)[1], list(records))
        return [int(n or 0) for n in found]

    def streak(self, tenant: str, failed: bool | None) -> int:
        """Count a batch in which every event had to wait (``failed``), or end the count (a
        batch that got through); None only reads it. Returns the batches in a row."""
        key = f"{PREFIX}streak:{tenant}"
        if failed is None:
            return int(self.redis.get(key) or 0)
        if not failed:
            self.redis.delete(key)
            return 0
        with self.redis.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 24 * 3600)
            return int(pipe.execute()[0])

    def parked(self, tenant: str, count: int) -> list[tuple[int, str, float]]:
        """The first ``count`` parked events by due time: ``(event id, record, due)``, the due
        time in seconds since the epoch."""
        found = self.redis.zrange(parked_keys(tenant)[0], 0, count - 1, withscores=True)
        out = []
        for member, due in found:
            event_id, _, record = member.decode().partition(":")
            out.append((int(event_id), record, due / 1000))
        return out

    def parked_records(self, tenant: str) -> set[str]:
        """The record keys (:func:`record_key`) with parked events."""
        return {k.decode() for k in self.redis.hkeys(parked_keys(tenant)[1])}

    def next_due(self, tenant: str) -> float | None:
        """Seconds until the tenant's first parked event comes due (None: none parked)."""
        first = self.redis.zrange(parked_keys(tenant)[0], 0, 0, withscores=True)
        return max((first[0][1] - now_ms()) / 1000, 0.0) if first else None

    def forget_keys(self, tenant: str, keys: Iterable[str]) -> None:
        """Let later deliveries with these keys in: their first is being processed now."""
        names = [dedup_key(tenant, k) for k in keys if k]
        if names:
            self.redis.delete(*names)

    def peek(self, tenant: str, count: int) -> list[Entry]:
        """The first entries of a tenant's stream, as they wait (nothing is taken)."""
        found = self.redis.xrange(stream_key(tenant), count=count)
        return [Entry(i.decode(), _decode(f)) for i, f in found]

    def waiting_records(self, tenant: str, page: int = 1000) -> set[tuple[str, str]]:
        """The records ``(kind, id)`` that events waiting in the tenant's stream, or parked,
        are about (read page by page: a backlog of thousands costs a few round trips)."""
        found: set[tuple[str, str]] = set()
        start = "-"
        while items := self.redis.xrange(stream_key(tenant), min=start, count=page):
            for _, raw in items:
                fields = _decode(raw)
                if fields.get("record_id"):
                    found.add((str(fields.get("kind", "")), str(fields["record_id"])))
            start = "(" + items[-1][0].decode()
        parked = (r.partition(":") for r in self.parked_records(tenant))
        return found | {(kind, record_id) for kind, _, record_id in parked}

    def in_stream(self, tenant: str) -> int:
        """Entries in the tenant's stream (new, or taken and not yet done)."""
        return int(self.redis.xlen(stream_key(tenant)))

    def waiting(self, tenant: str | None = None) -> int:
        """Events not yet done (in the stream or parked), of one tenant or of all."""
        names = [tenant] if tenant else [t.decode() for t in self.redis.smembers(TENANTS)]
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xlen(stream_key(name))
                pipe.zcard(parked_keys(name)[0])
            return sum(int(n) for n in pipe.execute())

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)


def _encode(fields: dict[str, Any]) -> str:
    # One JSON value, not a field per name: an admission packs 3 arguments instead of some 20,
    # and Redis stores one field (measured: bench/ingress.py, docs/performance.md).
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _decode(fields: dict[bytes, bytes]) -> dict[str, Any]:
    if b"e" in fields:
        return json.loads(fields[b"e"])
    # an entry written before the one-field format (a stream that outlived an upgrade)
    return {key.decode(): json.loads(value) for key, value in fields.items()}


def jobs_queue(connection: redis.Redis) -> Queue:
    """The rq queue of the bridge's jobs."""
    return Queue(JOBS, connection=connection)
