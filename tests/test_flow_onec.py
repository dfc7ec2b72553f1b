"""The fireworks shop's 1C exchanging with the bridge, the whole way: 1C uploads its orders
(chunked, zipped, windows-1251 or UTF-8), the worker applies the order rules, the bridge's
comment comes back into the order through ``query``, the responsible gets an e-mail and the
task is created in the shop's Bitrix24 (``tasks_in``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge import clock, sweeps
from bridge.crms.onec.sandbox.documents import SandboxOrder
from tests.onec_env import TENANT, OneCBridge

CANCEL_NOTE = (
    "Нарушение регламента: заказ отменён, а в комментарии нет причины отмены и фамилии "
    "оператора, отменившего заказ. Допишите их в комментарий."
)


def cancelled(onec: OneCBridge, comment: str, number: str = "ПТ00-000310") -> SandboxOrder:
    """An order a manager cancelled in 1C, with that comment."""
    return onec.onec.add_order(
        number,
        datetime(2025, 10, 30, 11, 20),
        status="Принят",
        cancelled=True,
        comment=comment,
        manager="Смирнова Анна",
        buyer="Иванов Пётр",
        phone="+7 900 000-00-10",
        email="ivanov@example.ru",
        amount=13128,
        lines=[("Батарея салютов «Русская зима» & «Гигант»", "Батареи салютов", 6394, 2)],
    )


@pytest.mark.parametrize(
    ("encoding", "container", "zipped", "chunk"),
    [
        ("windows-1251", False, False, 700),
        ("utf-8", True, True, 300),
    ],
    ids=["windows-1251, plain, in chunks", "utf-8, Контейнер, zipped in chunks"],
)
def test_a_cancelled_order_without_reason_comes_back_with_the_violation(
    make_onec, encoding: str, container: bool, zipped: bool, chunk: int
) -> None:
    onec: OneCBridge = make_onec(encoding=encoding, container=container)
    order = cancelled(onec, "Клиент передумал")

    log = onec.exchange(zipped=zipped, chunk=chunk)

    assert log.answers("checkauth")[0].startswith("success\nBRIDGE1C\n")
    assert log.answers("init") == ["zip=yes\nfile_limit=1048576"]
    assert len(log.answers("file")) > 2 and set(log.answers("file")) == {"success"}
    assert log.answers("import") == ["success"] and log.answers("success") == ["success"]
    [query] = [s for s in log.steps if s.mode == "query"]
    prolog = f'<?xml version="1.0" encoding="{"UTF-8" if encoding == "utf-8" else encoding}"?>'
    assert query.body.startswith(prolog.encode())
    assert "Клиент передумал\n[Регламент " in query.body.decode(encoding)
    # 1C took the order back: the manager sees the violation in the order's comment
    assert order.comment.startswith("Клиент передумал\n[Регламент ")
    assert order.comment.endswith(f"] {CANCEL_NOTE}")
    [mail] = onec.emails()
    assert mail["To"] == "smirnova@petarda.example"
    assert mail["Subject"] == (
        "Заказ ПТ00-000310 от 30.10.2025: отмена без причины и фамилии оператора"
    )
    [task] = onec.tasks()
    assert task["TITLE"] == (
        "Допишите в комментарий причину отмены и свою фамилию: Заказ ПТ00-000310 от 30.10.2025"
    )
    assert (task["RESPONSIBLE_ID"], task["UF_CRM_TASK"]) == ("3", [])


def test_a_cancelled_order_with_reason_and_surname_needs_nothing(onec: OneCBridge) -> None:
    order = cancelled(onec, "Клиент передумал, отмену оформила Смирнова")

    log = onec.exchange()

    assert log.ok
    [query] = [s for s in log.steps if s.mode == "query"]
    assert "<Документ>" not in query.body.decode("windows-1251")
    assert order.comment == "Клиент передумал, отмену оформила Смирнова"
    assert onec.emails() == [] and onec.tasks() == []


def test_what_query_gave_is_given_again_until_1c_says_success(onec: OneCBridge) -> None:
    order = cancelled(onec, "")
    first = onec.exchange(confirm=False)  # 1C loaded the answer and stopped before success
    assert CANCEL_NOTE in order.comment and first.answers("success") == []

    again = onec.exchange()

    [query] = [s for s in again.steps if s.mode == "query"]
    assert order.ref in query.body.decode("windows-1251")
    assert order.comment.count(CANCEL_NOTE) == 1
    [last] = [s for s in onec.exchange().steps if s.mode == "query"]
    assert "<Документ>" not in last.body.decode("windows-1251")
    assert len(onec.tasks()) == 1 and len(onec.emails()) == 1


def test_the_same_upload_twice_has_one_set_of_effects(onec: OneCBridge) -> None:
    cancelled(onec, "Клиент передумал")
    body = onec.onec.file(list(onec.onec.orders.values()))

    first = onec.exchange(file=body, before_query=None)  # the worker has not run yet
    second = onec.exchange(file=body)  # the same bytes again; now the worker runs
    third = onec.exchange(file=body)  # and once more, after they were processed

    assert first.ok and second.ok and third.ok
    assert len(onec.tasks()) == 1 and len(onec.emails()) == 1
    [order] = onec.onec.orders.values()
    assert order.comment.count(CANCEL_NOTE) == 1
    # the second was folded into the first while it waited; the third found nothing new
    batches = [e["event"] for e in onec.runtime.journal.recent(50) if e["event"].type == "batch"]
    assert sorted((b.status, b.reason) for b in batches) == [
        ("processed", "0 record(s)"),
        ("processed", "1 record(s), 1 queued"),
    ]


def test_an_order_in_work_for_8_days_goes_to_the_head_of_sales(
    onec: OneCBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = onec.onec.add_order(
        "ПТ00-000401",
        datetime(2025, 10, 24, 10, 0),
        status="В работе",
        comment="ждём оплату по ссылке",
        manager="Смирнова Анна",
        amount=4700,
    )
    onec.exchange()
    assert "В работе с" in order.requisites  # the bridge's stamp went back into 1C
    assert onec.tasks() == [] and onec.emails() == []
    tenant = onec.runtime.tenant(TENANT)

    assert sweeps.sweep(onec.runtime, TENANT) == "1 open record(s) swept, 0 with actions"
    later = clock.utcnow() + timedelta(days=8)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert sweeps.sweep(onec.runtime, TENANT) == "1 open record(s) swept, 1 with actions"
    sweeps.sweep(onec.runtime, TENANT)  # the next hour's sweep reminds no one twice

    [task] = onec.tasks()
    assert task["TITLE"] == "7 дней «в работе»/«обработан»: отменить заказ — " + (
        "Заказ ПТ00-000401 от 24.10.2025"
    )
    assert task["RESPONSIBLE_ID"] == tenant.mapping.user("orlova")
    [mail] = onec.emails()
    assert mail["To"] == "smirnova@petarda.example"
    onec.exchange()
    note = "] Заказ 7 дней «в работе»/«обработан»: передан начальнику ОП на отмену."
    assert order.comment.endswith(note)


def test_a_second_order_of_a_client_with_one_in_work_is_flagged_and_routed(
    onec: OneCBridge,
) -> None:
    onec.onec.add_order(
        "ПТ00-000580",
        datetime(2025, 10, 29, 12, 0),
        status="В работе",
        comment="ждём оплату",
        manager="Кузнецова Мария",
        phone="+7 916 123-45-67",
    )
    onec.exchange()
    second = onec.onec.add_order(
        "ПТ00-000605",
        datetime(2025, 10, 31, 17, 45),
        status="Новый",
        manager="Смирнова Анна",
        phone="+7 916 123-45-67",
    )

    onec.exchange()
    onec.exchange()  # the flag went back into 1C; the next upload brings it back: no echo

    assert second.requisites["Повторный заказ к"] == "ПТ00-000580"
    assert "] Повторный заказ: у клиента уже есть открытый заказ №ПТ00-000580." in second.comment
    [task] = [t for t in onec.tasks() if t["TITLE"].startswith("Клиент уже в работе")]
    assert task["TITLE"].endswith("Заказ ПТ00-000580 от 29.10.2025")
    assert task["RESPONSIBLE_ID"] == "3"
    assert "ответственный — пользователь 4" in task["DESCRIPTION"]
    assert len([t for t in onec.tasks() if t["TITLE"].startswith("Клиент уже в работе")]) == 1
