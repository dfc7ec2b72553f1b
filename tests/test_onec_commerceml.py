"""CommerceML order documents read from the golden fixtures (tests/fixtures/onec/, shaped after
the samples cited in shared/reference/onec.md §2) and written back for ``query``."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.crms.onec import commerceml
from bridge.crms.onec.commerceml import CommerceMLError
from bridge.crms.onec.order import Order, own_comment
from bridge.crms.onec.sandbox.documents import SandboxOrder, package
from bridge.crms.onec.uploads import UploadRefused, safe_name

FIXTURES = Path(__file__).parent / "fixtures" / "onec"
ZONE = "Europe/Moscow"
FLAGS = {"Отменен": "Отменен", "ПометкаУдаления": "Удален"}


def read(name: str) -> list[Order]:
    with (FIXTURES / name).open("rb") as stream:
        return commerceml.read(stream, ZONE)


def test_the_2_05_file_in_windows_1251_gives_its_orders_not_its_payment() -> None:
    cancelled, in_work = read("orders-2.05-windows-1251.xml")
    assert cancelled.id == "7f1c2d3e-4a5b-11ef-8a00-00155d000310"
    assert cancelled.date == "2025-10-30T11:20:00+03:00"  # 1C's local time, the tenant's zone
    assert cancelled.title() == "Заказ ПТ00-000310 от 30.10.2025"
    assert cancelled.buyer.full_name == "Иванов Пётр Сергеевич"
    assert cancelled.lines[0].name == "Батарея салютов «Русская зима» & «Гигант» 100 залпов"
    fields = cancelled.fields("Статус заказа", FLAGS)
    assert fields["Статус"] == "Отменен"  # the flag wins over «[N] Принят»
    assert fields["Статус заказа"] == "[N] Принят"
    assert fields["Дата изменения статуса"] == "2025-10-31T16:00:00+03:00"
    assert (fields["Телефон"], fields["Почта"]) == ("+7 900 000-00-10", "ivanov@example.ru")
    assert fields["Товары.ТипНоменклатуры"] == "Товар; Услуга"
    in_fields = in_work.fields("Статус заказа", FLAGS)
    assert (in_fields["Статус"], in_fields["Телефон"]) == ("В работе", "+7 900 000-04-01")


def test_the_3_1_file_with_containers_and_a_namespace_reads_the_same_way() -> None:
    [order] = read("orders-3.1-container-utf-8.xml")
    fields = order.fields("Статус заказа", FLAGS)
    assert (order.number, fields["Статус"], fields["Товары.Группа"]) == (
        "ПТ00-000520",
        "Бронь",
        "Элитные фейерверки",
    )
    assert fields["Дата счета"] == "2025-10-31T00:00:00+03:00"
    assert fields["Контрагент"] == "Общество с ограниченной ответственностью «Праздник»"


def test_utf_8_bytes_labelled_windows_1251_are_refused_not_misread() -> None:
    text = (FIXTURES / "orders-3.1-container-utf-8.xml").read_bytes()
    lying = text.replace(b'encoding="UTF-8"', b'encoding="windows-1251"', 1)
    with pytest.raises(CommerceMLError, match="not well-formed"):
        commerceml.read(io.BytesIO(lying), ZONE)


def test_a_dtd_is_refused_by_the_parser_itself() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    with pytest.raises(CommerceMLError, match="DTD and entities are refused"):
        commerceml.read(io.BytesIO(body), ZONE)


@pytest.mark.parametrize(("encoding", "container"), [("windows-1251", False), ("utf-8", True)])
def test_what_query_writes_reads_back_as_the_same_orders(encoding: str, container: bool) -> None:
    orders = read("orders-2.05-windows-1251.xml") + read("orders-3.1-container-utf-8.xml")
    now = datetime(2025, 10, 31, 16, 5, tzinfo=ZoneInfo(ZONE))
    body = commerceml.write(orders, encoding=encoding, container=container, now=now)
    label = "UTF-8" if encoding == "utf-8" else encoding
    assert body.startswith(f'<?xml version="1.0" encoding="{label}"?>'.encode())
    assert ("<Контейнер>" in body.decode(encoding)) is container
    assert commerceml.read(io.BytesIO(body), ZONE) == orders


def test_characters_windows_1251_lacks_become_references() -> None:
    [order] = read("orders-3.1-container-utf-8.xml")
    rouble = Order.from_data({**_data(order), "comment": "Итого 58 000 ₽"})
    now = datetime(2025, 10, 31, 16, 5)
    body = commerceml.write([rouble], encoding="windows-1251", now=now)
    assert b"&#8381;" in body
    assert commerceml.read(io.BytesIO(body), ZONE)[0].comment == "Итого 58 000 ₽"


def test_the_stand_in_writes_what_the_golden_file_holds() -> None:
    """The stand-in 1C's documents parse to the golden fixture's (on the attributes both hold)."""
    [golden] = read("orders-3.1-container-utf-8.xml")
    made = SandboxOrder(
        ref=golden.id,
        number=golden.number,
        date=datetime(2025, 10, 31, 9, 15),
        status="Бронь",
        comment="Бронь до пятницы",
        manager="Кузнецова Мария",
        amount=58000,
        lines=[("Салют «Императорский» 300 залпов", "Элитные фейерверки", 29000, 2)],
    )
    body = package([made], encoding="utf-8", container=True, now=datetime(2025, 10, 31))
    [order] = commerceml.read(io.BytesIO(body), ZONE)
    mine, theirs = order.fields("Статус заказа", FLAGS), golden.fields("Статус заказа", FLAGS)
    for key in ("Ид", "Номер", "Дата", "Сумма", "Комментарий", "Статус", "Менеджер"):
        assert mine[key] == theirs[key], key
    assert mine["Товары.Группа"] == theirs["Товары.Группа"]


def test_the_bridge_s_own_lines_are_not_the_comment_the_rules_read() -> None:
    comment = "Клиент передумал\n[Регламент 31.10.2025 16:05] Нарушение регламента: ..."
    assert own_comment(comment) == "Клиент передумал"


@pytest.mark.parametrize(
    ("raw", "name"),
    [("orders.xml", "orders.xml"), ("C:\\v8_8789_c.xml", "v8_8789_c.xml"), ("a/b/c.zip", "c.zip")],
)
def test_a_file_name_is_its_last_part(raw: str, name: str) -> None:
    assert safe_name(raw) == name


@pytest.mark.parametrize(
    "raw", ["../x.xml", "..\\..\\x.xml", "a/../b.xml", "", ".refused", "a\x00.xml"]
)
def test_a_hostile_file_name_is_refused(raw: str) -> None:
    with pytest.raises(UploadRefused):
        safe_name(raw)


def _data(order: Order) -> dict:
    return json.loads(order.to_json())
