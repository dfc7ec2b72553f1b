"""The stand-in's orders and the CommerceML it writes and reads as 1C does.

Written independently of the bridge's own reader and writer (``commerceml.py``): by text, in
the shape of the golden fixtures (tests/fixtures/onec/, after the samples cited in
shared/reference/onec.md §2), so that a mistake on one side is not mirrored on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from defusedxml.ElementTree import fromstring


@dataclass
class SandboxOrder:
    """A customer order in the stand-in infobase (1C's words: «ЗаказКлиента»)."""

    ref: str
    """Its GUID: CommerceML's ``Ид`` and OData's ``Ref_Key``."""
    number: str
    date: datetime
    """Local time, no offset: as 1C keeps it."""
    status: str = "Новый"
    cancelled: bool = False
    comment: str = ""
    manager: str = ""
    buyer: str = "Покупатель"
    phone: str = ""
    email: str = ""
    amount: float = 0.0
    lines: list[tuple[str, str, float, float]] = field(default_factory=list)
    """(name, product group, price, quantity)."""
    requisites: dict[str, str] = field(default_factory=dict)
    """Further requisites of its exchange (``Метод оплаты``, ``Дата счета``...)."""
    version: int = 1
    """Bumped by every change: OData's DataVersion, and what the next exchange uploads."""


def document(order: SandboxOrder) -> str:
    """One ``<Документ>`` as 1C's exchange with a site writes it."""
    lines = "".join(_line(i, line) for i, line in enumerate(order.lines, 1))
    requisites = {
        "Номер по 1С": order.number,
        "Дата по 1С": order.date.strftime("%Y-%m-%d %H:%M:%S"),
        "Проведен": "true",
        "Отменен": "true" if order.cancelled else "false",
        "Статус заказа": order.status,
        "Менеджер": order.manager,
        **order.requisites,
    }
    values = "".join(
        f"<ЗначениеРеквизита><Наименование>{escape(k)}</Наименование>"
        f"<Значение>{escape(v)}</Значение></ЗначениеРеквизита>"
        for k, v in requisites.items()
    )
    contacts = "".join(
        f"<Контакт><Тип>{kind}</Тип><Значение>{escape(value)}</Значение></Контакт>"
        for kind, value in (("Почта", order.email), ("ТелефонРабочий", order.phone))
        if value
    )
    return (
        f"<Документ><Ид>{order.ref}</Ид><Номер>{escape(order.number)}</Номер>"
        f"<Дата>{order.date:%Y-%m-%d}</Дата><Время>{order.date:%H:%M:%S}</Время>"
        "<ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль>"
        f"<Валюта>руб</Валюта><Курс>1</Курс><Сумма>{order.amount:.2f}</Сумма>"
        f"<Комментарий>{escape(order.comment)}</Комментарий>"
        f"<Контрагенты><Контрагент><Ид>{escape(order.ref)}-buyer</Ид>"
        f"<Наименование>{escape(order.buyer)}</Наименование><Роль>Покупатель</Роль>"
        f"<Контакты>{contacts}</Контакты></Контрагент></Контрагенты>"
        f"<Товары>{lines}</Товары><ЗначенияРеквизитов>{values}</ЗначенияРеквизитов></Документ>"
    )


def _line(index: int, line: tuple[str, str, float, float]) -> str:
    name, group, price, quantity = line
    return (
        f"<Товар><Ид>item-{index}</Ид><Наименование>{escape(name)}</Наименование>"
        '<БазоваяЕдиница Код="796" НаименованиеПолное="Штука" МеждународноеСокращение="PCE">'
        f"шт</БазоваяЕдиница><ЦенаЗаЕдиницу>{price:.2f}</ЦенаЗаЕдиницу>"
        f"<Количество>{quantity:g}</Количество><Сумма>{price * quantity:.2f}</Сумма>"
        "<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Группа</Наименование>"
        f"<Значение>{escape(group)}</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Товар>"
    )


def package(orders: list[SandboxOrder], *, encoding: str, container: bool, now: datetime) -> bytes:
    """A whole file: ``windows-1251`` with 2.05's bare documents, or CommerceML 3.1."""
    version = "3.1" if container else "2.05"
    namespace = ' xmlns="urn:1C.ru:commerceml_2"' if container else ""
    wrap = ("<Контейнер>", "</Контейнер>") if container else ("", "")
    body = "".join(f"{wrap[0]}{document(o)}{wrap[1]}" for o in orders)
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<КоммерческаяИнформация{namespace} ВерсияСхемы="{version}" '
        f'ДатаФормирования="{now:%Y-%m-%dT%H:%M:%S}">{body}</КоммерческаяИнформация>'
    )
    return text.encode(encoding)


def returned(body: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """What a site's ``query`` answer asks of 1C: (Ид, Комментарий, requisites) per order."""
    root = fromstring(body, forbid_dtd=True)
    out = []
    for doc in root.iter():
        if _local(doc.tag) != "Документ":
            continue
        fields = {_local(child.tag): child for child in doc}
        requisites = {}
        holder = fields.get("ЗначенияРеквизитов")
        for item in holder if holder is not None else []:
            parts = {_local(c.tag): (c.text or "") for c in item}
            requisites[parts.get("Наименование", "")] = parts.get("Значение", "")
        comment = fields.get("Комментарий")
        text = (comment.text or "") if comment is not None else ""
        out.append((fields["Ид"].text or "", text, requisites))
    return out


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
