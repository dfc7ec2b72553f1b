"""CommerceML 2 order documents: read from bytes with defusedxml, written for ``mode=query``.

Reading (shared/reference/onec.md §2.3): the bytes go to the parser undecoded, so the prolog
decides the encoding (windows-1251 or UTF-8); no DTD is accepted (CommerceML never needs one,
and entity bombs need one); tags are compared by local name, with or without
``xmlns="urn:1C.ru:commerceml_2"``; a ``Документ`` is taken directly under the root or inside a
``Контейнер`` (CommerceML 3.x, the 1C-Bitrix module from 6.5). Only orders are kept
(``ХозОперация`` «Заказ товара», or none given).

Writing: the orders the bridge changed, in the tenant's encoding with a matching prolog;
characters the encoding lacks become character references, never question marks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from bridge.crms.onec.order import Line, Order, Party, local_time

ROOT = "КоммерческаяИнформация"
_DATE = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?)?$")
ORDER_OPERATION = "Заказ товара"


class CommerceMLError(Exception):
    """A file that is not CommerceML the bridge can read (the message says why)."""


def read(stream: IO[bytes], timezone: str) -> list[Order]:
    """Every order of a CommerceML file.

    Raises:
        CommerceMLError: not well-formed, a DTD or entity, not CommerceML, a bad date.
    """
    try:
        return list(_orders(stream, timezone))
    except DefusedXmlException as exc:
        raise CommerceMLError(f"DTD and entities are refused: {type(exc).__name__}") from None
    except ParseError as exc:
        raise CommerceMLError(f"not well-formed XML: {exc}") from None


def _orders(stream: IO[bytes], timezone: str) -> Iterator[Order]:
    events = iterparse(stream, events=("start", "end"), forbid_dtd=True)
    _, root = next(events)
    if _local(root.tag) != ROOT:
        raise CommerceMLError(f"the root element is <{_local(root.tag)}>, not <{ROOT}>")
    for event, element in events:
        if event == "end" and _local(element.tag) == "Документ":
            operation = _text(element, "ХозОперация")
            if operation in ("", ORDER_OPERATION):
                yield _order(element, timezone)
            element.clear()
            root.clear()  # the documents read so far are done with


def _order(doc: Element, timezone: str) -> Order:
    order_id = _text(doc, "Ид")
    if not order_id:
        raise CommerceMLError(f"a <Документ> has no <Ид> (number {_text(doc, 'Номер')!r})")
    try:
        date = local_time(_text(doc, "Дата"), _text(doc, "Время"), timezone)
    except ValueError as exc:
        raise CommerceMLError(f"order {order_id}: {exc}") from None
    return Order(
        id=order_id,
        number=_text(doc, "Номер"),
        date=date,
        operation=_text(doc, "ХозОперация"),
        role=_text(doc, "Роль"),
        currency=_text(doc, "Валюта"),
        rate=_text(doc, "Курс"),
        amount=_text(doc, "Сумма"),
        comment=_text(doc, "Комментарий", strip=False).strip(),
        parties=tuple(_party(p) for p in _all(doc, "Контрагенты", "Контрагент")),
        lines=tuple(_line(item) for item in _all(doc, "Товары", "Товар")),
        requisites=tuple((n, _dated(v, timezone)) for n, v in _requisites(doc)),
    )


def _dated(value: str, timezone: str) -> str:
    """A requisite holding a date or a date-time, made aware in the tenant's zone."""
    if not _DATE.match(value):
        return value
    try:
        return local_time(value, "", timezone)
    except ValueError:
        return value


def _party(element: Element) -> Party:
    contacts = []
    for contact in _all(element, "Контакты", "Контакт"):
        kind = _text(contact, "Тип") or _text(contact, "КонтактВид")  # both seen
        contacts.append((kind, _text(contact, "Значение")))
    return Party(
        id=_text(element, "Ид"),
        name=_text(element, "Наименование"),
        full_name=_text(element, "ПолноеНаименование"),
        role=_text(element, "Роль"),
        contacts=tuple(contacts),
    )


def _line(element: Element) -> Line:
    return Line(
        id=_text(element, "Ид"),
        name=_text(element, "Наименование"),
        unit=_text(element, "БазоваяЕдиница"),
        price=_text(element, "ЦенаЗаЕдиницу"),
        quantity=_text(element, "Количество"),
        amount=_text(element, "Сумма"),
        requisites=_requisites(element),
    )


def _requisites(element: Element) -> tuple[tuple[str, str], ...]:
    found = []
    for item in _all(element, "ЗначенияРеквизитов", "ЗначениеРеквизита"):
        values = [(v.text or "").strip() for v in _children(item, "Значение")]
        found.append((_text(item, "Наименование"), "; ".join(v for v in values if v)))
    return tuple(found)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _all(element: Element, group: str, name: str) -> Iterator[Element]:
    for holder in _children(element, group):
        yield from _children(holder, name)


def _text(element: Element, name: str, strip: bool = True) -> str:
    child = next(_children(element, name), None)
    text = (child.text or "") if child is not None else ""
    return text.strip() if strip else text


# -- writing --------------------------------------------------------------------------------


def write(
    orders: Iterable[Order],
    *,
    encoding: str,
    version: str = "2.05",
    container: bool = False,
    now: datetime,
) -> bytes:
    """A CommerceML file of orders, encoded with a matching prolog."""
    root = Element(ROOT, {"ВерсияСхемы": version, "ДатаФормирования": _stamp(now)})
    for order in orders:
        parent = SubElement(root, "Контейнер") if container else root
        _document(parent, order)
    body = tostring(root, encoding="unicode")
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    prolog = f'<?xml version="1.0" encoding="{codec.upper() if codec == "utf-8" else codec}"?>\n'
    return (prolog + body).encode(encoding, errors="xmlcharrefreplace")


def _document(parent: Element, order: Order) -> None:
    doc = SubElement(parent, "Документ")
    day, _, clock = order.date.partition("T")
    _add(doc, "Ид", order.id)
    _add(doc, "Номер", order.number)
    _add(doc, "Дата", day)
    _add(doc, "Время", clock[:8])
    _add(doc, "ХозОперация", order.operation or ORDER_OPERATION)
    _add(doc, "Роль", order.role or "Продавец")
    _add(doc, "Валюта", order.currency)
    _add(doc, "Курс", order.rate)
    _add(doc, "Сумма", order.amount)
    _add(doc, "Комментарий", order.comment)
    parties = SubElement(doc, "Контрагенты")
    for party in order.parties:
        _party_element(SubElement(parties, "Контрагент"), party)
    lines = SubElement(doc, "Товары")
    for line in order.lines:
        _line_element(SubElement(lines, "Товар"), line)
    _requisites_element(doc, order.requisites)


def _party_element(element: Element, party: Party) -> None:
    for tag, value in (
        ("Ид", party.id),
        ("Наименование", party.name),
        ("ПолноеНаименование", party.full_name),
        ("Роль", party.role),
    ):
        _add(element, tag, value)
    if party.contacts:
        contacts = SubElement(element, "Контакты")
        for kind, value in party.contacts:
            contact = SubElement(contacts, "Контакт")
            _add(contact, "Тип", kind)
            _add(contact, "Значение", value)


def _line_element(element: Element, line: Line) -> None:
    for tag, value in (
        ("Ид", line.id),
        ("Наименование", line.name),
        ("БазоваяЕдиница", line.unit),
        ("ЦенаЗаЕдиницу", line.price),
        ("Количество", line.quantity),
        ("Сумма", line.amount),
    ):
        _add(element, tag, value)
    _requisites_element(element, line.requisites)


def _requisites_element(parent: Element, requisites: tuple[tuple[str, str], ...]) -> None:
    if requisites:
        holder = SubElement(parent, "ЗначенияРеквизитов")
        for name, value in requisites:
            item = SubElement(holder, "ЗначениеРеквизита")
            _add(item, "Наименование", name)
            _add(item, "Значение", value)


def _add(parent: Element, tag: str, value: str) -> None:
    if value != "" or tag in ("Наименование", "Значение", "Комментарий"):
        SubElement(parent, tag).text = value


def _stamp(now: datetime) -> str:
    return now.replace(tzinfo=None, microsecond=0).isoformat()
