"""The 1C connector on its store: which uploads become which events, what the rules see, how
the bridge's writes wait for 1C, and where a paired Bitrix24 finds a task after a crash."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.actions import AddComment, CreateTask, UpdateFields
from bridge.crms.onec.connector import OneCConnector
from bridge.crms.onec.files import read_orders
from bridge.masking import redact
from bridge.models import Action, Event, LookupQuery, RecordRef
from tests.onec_env import PAIRED, TENANT, OneCBridge

FIXTURE = Path(__file__).parent / "fixtures" / "onec" / "orders-2.05-windows-1251.xml"
AT = datetime(2025, 10, 31, 13, 5, tzinfo=UTC)
CANCELLED = "7f1c2d3e-4a5b-11ef-8a00-00155d000310"
IN_WORK = "7f1c2d3e-4a5b-11ef-8a00-00155d000401"


def connector(onec: OneCBridge) -> OneCConnector:
    return onec.runtime.connector(onec.runtime.tenant(TENANT))  # type: ignore[return-value]


def batch(conn: OneCConnector, event_id: int, at: datetime = AT) -> Event:
    sha = conn.store.keep(FIXTURE, "xml", move=False)
    return Event(TENANT, "onec", "batch", RecordRef("", sha), at, "exchange", event_id)


def test_an_upload_announces_its_orders_once_and_again_only_to_its_own_retry(
    onec: OneCBridge,
) -> None:
    conn = connector(onec)
    first = conn.expand(batch(conn, 1))
    assert [(i.type, i.kind, i.record_id) for i in first] == [
        ("record.created", "order", CANCELLED),
        ("record.created", "order", IN_WORK),
    ]
    assert [i.dedup_key for i in conn.expand(batch(conn, 1))] == [i.dedup_key for i in first]
    assert conn.expand(batch(conn, 2)) == []  # the same content, another upload: nothing new
    assert all(i.payload.keys() == {"number", "upload"} for i in first)  # no names, no phones


def test_an_older_upload_read_late_does_not_undo_a_newer_one(onec: OneCBridge) -> None:
    conn = connector(onec)
    orders = read_orders(FIXTURE, "xml", conn.options, conn.zone)
    newer = [replace(o, comment="Клиент передумал, Смирнова") for o in orders]
    conn.ingest(newer, at=AT, upload="newer", source="exchange")
    assert conn.ingest(orders, at=AT - timedelta(minutes=5), upload="older", source="x") == []
    assert conn.fetch(RecordRef("order", CANCELLED)).fields["comment"] == (
        "Клиент передумал, Смирнова"
    )


def test_the_record_is_the_order_in_canonical_words(onec: OneCBridge) -> None:
    conn = connector(onec)
    conn.expand(batch(conn, 1))
    record = conn.fetch(RecordRef("order", CANCELLED))
    assert (record.stage, record.outcome, record.responsible, record.amount) == (
        "cancelled",
        "lost",
        "3",
        13128.0,
    )
    assert record.title == "Заказ ПТ00-000310 от 30.10.2025"
    assert record.fields["stage_since"] == "2025-10-31T16:00:00+03:00"
    assert conn.contact_email(record) == "ivanov@example.ru"
    assert conn.user_email("3") == "smirnova@petarda.example"
    assert [r.id for r in conn.list_open("order")] == [IN_WORK]
    query = LookupQuery("order", (("client_phone", "+7 900 000-04-01"),), open_only=True)
    assert [r.id for r in conn.find(query)] == [IN_WORK]


def test_writes_wait_for_1c_and_the_record_sees_them_meanwhile(onec: OneCBridge) -> None:
    conn = connector(onec)
    conn.expand(batch(conn, 1))
    record = conn.fetch(RecordRef("order", IN_WORK))
    stamp = Action("s" * 32, "stamp", record.ref, UpdateFields({"in_work_since": "2025-10-24"}))
    note = Action("n" * 32, "note", record.ref, AddComment("Укажите причину"))
    outcomes = conn.execute(record, [stamp, note])
    assert {o.status for o in outcomes.values()} == {"done"}
    assert conn.execute(record, [stamp, note]) == outcomes  # a retry repeats nothing
    changes = conn.store.changes(IN_WORK)
    assert (changes.version, changes.pending, len(changes.notes)) == (2, True, 1)
    assert conn.fetch(record.ref).fields["in_work_since"] == "2025-10-24"
    assert conn.find_done(record, note, AT) == outcomes[note.key].result
    unmapped = Action("u" * 32, "x", record.ref, UpdateFields({"nothing_like_it": "1"}))
    [failed] = conn.execute(record, [unmapped]).values()
    assert (failed.status, failed.error) == (
        "failed",
        "no 1C requisite is mapped to 'nothing_like_it'",
    )


def test_a_paired_bitrix24_finds_a_task_a_crashed_attempt_made(onec: OneCBridge) -> None:
    conn = connector(onec)
    conn.expand(batch(conn, 1))
    record = conn.fetch(RecordRef("order", CANCELLED))
    task = CreateTask("Допишите причину отмены: Заказ ПТ00-000310", "3", "", AT)
    action = Action("t" * 32, "cancelled-order-comment", record.ref, task)
    portal = onec.runtime.connector(onec.runtime.tenant(PAIRED))
    assert onec.runtime.executor(onec.runtime.tenant(TENANT), "order", "create_task") is portal
    assert portal.find_done(record, action, AT) is None

    [done] = portal.execute(record, [action]).values()  # then the worker died

    assert portal.find_done(record, action, AT) == done.result
    assert onec.portal.tasks[int(done.result["task_id"])]["UF_CRM_TASK"] == []


def test_the_exchange_cookie_is_masked_in_logs() -> None:
    line = "GET /hooks/onec/shop?type=sale&mode=init&sessid=IjM5Yi.axAw Cookie: BRIDGE1C=IjM5Yi.x"
    masked = redact(line)
    assert "IjM5Yi" not in masked and "BRIDGE1C=" in masked and "sessid=" in masked
