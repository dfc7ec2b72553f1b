"""A tenant's lease: one worker at a time; a worker killed on this machine (its supervisor
restarts it) gives its tenants back at once, not after the lease's 20 s; a holder on another
machine keeps its lease until it runs out."""

from __future__ import annotations

import subprocess
import sys

import redis

from bridge import queue
from bridge.queue import EventQueue


def holder_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def owner_of(pid: int) -> str:
    host, namespace, _, tail = queue.owner_name().split(":")
    return f"{host}:{namespace}:{pid}:{tail}"


def test_a_lease_is_one_workers_at_a_time(redis_conn: redis.Redis) -> None:
    q = EventQueue(redis_conn)
    first, second = queue.owner_name(), queue.owner_name()
    assert q.lease("t-one", first)
    assert not q.lease("t-one", second)  # the first is this very process: alive
    q.release("t-one", first)
    assert q.lease("t-one", second)


def test_a_killed_local_holder_gives_its_lease_back_at_once(redis_conn: redis.Redis) -> None:
    q = EventQueue(redis_conn)
    process = holder_process()
    try:
        assert q.lease("t-killed", owner_of(process.pid))
        assert not q.lease("t-killed", "me")  # alive: its lease holds
    finally:
        process.kill()
        process.wait()
    me = queue.owner_name()
    assert q.lease("t-killed", me)
    assert redis_conn.get(f"{queue.PREFIX}lease:t-killed").decode() == me
    assert redis_conn.pttl(f"{queue.PREFIX}lease:t-killed") > queue.LEASE_MS - 5000


def test_a_holder_on_another_machine_keeps_its_lease(redis_conn: redis.Redis) -> None:
    q = EventQueue(redis_conn)
    process = holder_process()
    process.kill()
    process.wait()
    _, namespace, _, tail = queue.owner_name().split(":")
    assert q.lease("t-remote", f"another-host:{namespace}:{process.pid}:{tail}")
    assert not q.lease("t-remote", queue.owner_name())
