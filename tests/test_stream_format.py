"""A stream entry is one JSON field; entries written in the earlier one-field-per-name format
(a stream that outlived an upgrade of the bridge) are still read."""

from __future__ import annotations

import json

import redis

from bridge.queue import EventQueue, stream_key

EVENT = {
    "k": "event",
    "crm": "bitrix24",
    "source": "ONCRMDEALUPDATE",
    "type": "record.updated",
    "kind": "deal",
    "record_id": "42",
    "subject": "",
    "dedup": "b24:ONCRMDEALUPDATE:42:1700000000",
    "payload": {"ts": "1700000000", "note": "ремонт «под ключ»"},
    "at": "2026-12-02T10:00:00+00:00",
}


def test_an_admitted_event_comes_back_whole(redis_conn: redis.Redis) -> None:
    queue = EventQueue(redis_conn)
    assert queue.admit("t-format", EVENT["dedup"], EVENT)
    assert queue.admit("t-format", EVENT["dedup"], EVENT) is None  # the same delivery again
    [entry] = queue.take("t-format", "w1", 10)
    assert entry.fields == EVENT
    assert list(redis_conn.xrange(stream_key("t-format"))[0][1]) == [b"e"]


def test_an_entry_of_the_earlier_format_is_still_read(redis_conn: redis.Redis) -> None:
    old = {name: json.dumps(value) for name, value in EVENT.items()}
    redis_conn.xadd(stream_key("t-old"), old)
    queue = EventQueue(redis_conn)
    [entry] = queue.take("t-old", "w1", 10)
    assert entry.fields == EVENT
    assert entry.kind == "event"
