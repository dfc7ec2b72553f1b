"""The queue's admission (one round trip per webhook) on the connection it keeps: it stays in
step with Redis through a restart, a Redis that lost its scripts, and threads that admit at
once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from bridge import services
from bridge.queue import EventQueue, stream_key
from bridge.services import EmbeddedRedis


def event(key: str) -> dict[str, str]:
    return {"k": "event", "crm": "bitrix24", "record_id": key, "dedup": key}


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, restarted on purpose (never the session's)."""
    server = EmbeddedRedis()
    yield server
    server.stop()


def test_a_webhook_after_a_redis_restart_is_queued(own_redis: EmbeddedRedis) -> None:
    client = services.connect(own_redis.url)
    queue = EventQueue(client)
    assert queue.admit("t-admit", "k1", event("k1"))
    own_redis.restart()  # the kept connection is dead, and Redis knows no script
    assert queue.admit("t-admit", "k2", event("k2"))
    assert queue.admit("t-admit", "k2", event("k2")) is None  # folded, as before the restart
    [[_, fields]] = client.xrange(stream_key("t-admit"))
    assert b"k2" in fields[b"e"]
    client.close()


def test_a_redis_that_lost_the_script_is_sent_it_again(redis_conn: redis.Redis) -> None:
    queue = EventQueue(redis_conn)
    assert queue.admit("t-admit", "k1", event("k1"))
    redis_conn.script_flush()
    assert queue.admit("t-admit", "k2", event("k2"))
    assert queue.admit("t-admit", "k3", event("k3"))
    assert redis_conn.xlen(stream_key("t-admit")) == 3


def test_threads_admitting_at_once_each_get_their_own_entry(redis_conn: redis.Redis) -> None:
    queue = EventQueue(redis_conn)
    found: dict[str, str | None] = {}

    def admit(thread: int) -> None:
        for n in range(50):
            key = f"{thread}-{n}"
            found[key] = queue.admit("t-admit", key, event(key))

    threads = [threading.Thread(target=admit, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = {i.decode(): f[b"e"] for i, f in redis_conn.xrange(stream_key("t-admit"))}
    assert len(entries) == 400
    # each answer names the entry of its own event, never a reply read for another thread
    assert all(f'"dedup":"{key}"' in entries[entry_id].decode() for key, entry_id in found.items())
