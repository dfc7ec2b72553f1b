"""Writing back through 1C's OData with ``If-Match`` on DataVersion: a document 1C changed
between the bridge's read and its write is read again, and nothing 1C wrote is lost
(shared/reference/onec.md §3.1, §6.14)."""

from __future__ import annotations

from datetime import datetime

from tests.onec_env import OneCBridge

NOTE = "] Нарушение регламента: заказ отменён, а в комментарии нет причины отмены"


def test_the_violation_is_written_at_once_and_query_has_nothing_to_add(make_onec) -> None:
    onec: OneCBridge = make_onec(odata=True)
    order = onec.onec.add_order(
        "ПТ-9",
        datetime(2025, 10, 30, 11, 0),
        cancelled=True,
        comment="Передумал",
        manager="Смирнова Анна",
    )
    log = onec.exchange()
    assert NOTE in order.comment and order.comment.startswith("Передумал\n[Регламент ")
    [query] = [s for s in log.steps if s.mode == "query"]
    assert "<Документ>" not in query.body.decode("windows-1251")
    assert [(method, status) for method, _, status in onec.onec.odata_log] == [
        ("GET", 200),
        ("PATCH", 200),
    ]


def test_an_order_changed_in_1c_between_read_and_write_is_read_again(make_onec) -> None:
    onec: OneCBridge = make_onec(odata=True)
    order = onec.onec.add_order(
        "ПТ-10", datetime(2025, 10, 30, 11, 0), cancelled=True, comment="", manager="Смирнова Анна"
    )
    onec.onec.change_after_read(order.ref, lambda o: setattr(o, "comment", "Перезвонит завтра"))

    onec.exchange()

    assert [(method, status) for method, _, status in onec.onec.odata_log] == [
        ("GET", 200),
        ("PATCH", 412),
        ("GET", 200),
        ("PATCH", 200),
    ]
    assert order.comment.startswith("Перезвонит завтра\n[Регламент ")  # the manager's words kept
    assert order.comment.count(NOTE) == 1


def test_a_requisite_1c_changed_meanwhile_is_not_overwritten(make_onec) -> None:
    onec: OneCBridge = make_onec(odata={"fields": {"in_work_since": "ВРаботеС"}})
    order = onec.onec.add_order(
        "ПТ-11", datetime(2025, 10, 30, 11, 0), status="В работе", comment="ждём оплату"
    )
    edit = lambda o: o.requisites.update({"ВРаботеС": "2025-10-20T09:00:00"})  # noqa: E731
    onec.onec.change_after_read(order.ref, edit)

    onec.exchange()

    assert order.requisites["ВРаботеС"] == "2025-10-20T09:00:00"
    [stamp] = [
        a
        for e in onec.runtime.journal.recent(20)
        for a in e["actions"]
        if a.kind == "update_fields"
    ]
    assert (stamp.status, stamp.error) == (
        "failed",
        "1C changed ВРаботеС meanwhile: not overwritten",
    )
