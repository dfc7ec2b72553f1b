"""Reconciliation for 1C: what the exchange never carried (an order made in 1C outside the
exchange node's filter, a change while the exchange is broken) is read through 1C's OData
(shared/reference/onec.md §3.1: the entity set with ``$filter`` on a date, ``$top``/``$skip``,
``allowedOnly``) and fed through the pipeline once; the exchange bringing it later does
nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import reconcile
from bridge.models import RecordRef
from tests.onec_env import TENANT, OneCBridge

NOTE = "] Нарушение регламента: заказ отменён, а в комментарии нет причины отмены"
ODATA = {
    "read": {"Отменен": "Отменен", "Менеджер____Presentation": "Менеджер"},
    "statuses": {"ВРаботе": "В работе"},  # УТ 11's enumeration names -> the exchange's words
    "page": 2,  # three orders: two pages
}


def test_orders_the_exchange_never_carried_are_read_through_odata_and_ruled_once(
    make_onec,
) -> None:
    onec: OneCBridge = make_onec(odata=ODATA)
    day = datetime.now().replace(microsecond=0) - timedelta(days=2)
    known = onec.onec.add_order("ПТ-1", day, status="В работе", manager="Смирнова Анна")
    assert onec.exchange().ok

    # the exchange breaks; meanwhile in 1C:
    onec.onec.change(known.ref, cancelled=True)  # cancelled, no reason given
    made = onec.onec.add_order(
        "ПТ-2", day, status="Принят", cancelled=True, manager="Кузнецова Мария"
    )
    working = onec.onec.add_order("ПТ-3", day, status="В работе", manager="Смирнова Анна")

    summary = reconcile.reconcile(onec.runtime, TENANT)
    assert summary.endswith(", 3 never heard of")
    onec.work()
    assert NOTE in known.comment and NOTE in made.comment  # written back through OData
    assert NOTE not in working.comment
    titles = sorted(task["TITLE"] for task in onec.tasks())
    assert len(titles) == 2 and all("свою фамилию" in t for t in titles)
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    record = conn.fetch(RecordRef("order", working.ref))
    assert (record.stage, record.responsible, record.title) == (
        "in_work",
        "3",
        "Заказ ПТ-3 от " + f"{day:%d.%m.%Y}",
    )
    snaps = onec.runtime.journal.snapshots(TENANT, "order")
    assert (snaps[working.ref].stage, snaps[made.ref].stage) == ("in_work", "cancelled")

    # the notes the bridge wrote are changes 1C made, but nothing new to the rules
    assert reconcile.reconcile(onec.runtime, TENANT).endswith(", 0 never heard of")
    onec.work()

    assert onec.exchange().ok  # the exchange is back and brings the same orders
    assert len(onec.tasks()) == 2
    assert (known.comment.count(NOTE), made.comment.count(NOTE)) == (1, 1)
    assert ("GET", "Document_ЗаказКлиента", 200) in onec.onec.odata_log


def test_without_odata_1c_cannot_say_what_changed(onec: OneCBridge) -> None:
    assert reconcile.reconcile(onec.runtime, TENANT) == "onec cannot say what changed"


def test_orders_dated_before_the_window_are_not_read(make_onec) -> None:
    onec: OneCBridge = make_onec(odata={**ODATA, "window_days": 10})
    old = datetime.now().replace(microsecond=0) - timedelta(days=11)
    onec.onec.add_order("ПТ-4", old, status="Принят", cancelled=True)
    onec.onec.add_order("ПТ-5", old + timedelta(days=2), status="Принят", cancelled=True)
    assert reconcile.reconcile(onec.runtime, TENANT).startswith("1 record(s) changed")
