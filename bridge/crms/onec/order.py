"""A 1C customer order as CommerceML carries it, and the flat record the mapping reads.

CommerceML (P:, shared/reference/onec.md §2) gives an order its identity (``Ид``), number,
date and time without an offset, sums, comment, counterparties, lines, and a list of named
requisites (``ЗначенияРеквизитов``) where each configuration keeps what matters: the status,
the cancellation flag, payment. :meth:`Order.fields` flattens all of it into the keys a
mapping names (``bridge/crms/onec/mapping.yaml``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TRUE = frozenset({"true", "1", "да", "истина", "yes"})
"""Booleans as configurations write them: ``true/false`` and ``0/1`` are both seen."""

NOTE_MARK = "[Регламент"
"""How every line the bridge adds to an order's comment starts: such lines are the bridge's
own and are left out of the comment the rules read."""

EMPTY_DATES = ("0001-01-01",)  # 1C's empty date
_DATE_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_STATUS_CODE = re.compile(r"^\[\w+\]\s*")  # Bitrix's "[N] Принят"


@dataclass(frozen=True)
class Party:
    """A counterparty of the order (``Контрагент``): the buyer, usually."""

    id: str = ""
    name: str = ""
    full_name: str = ""
    role: str = ""
    contacts: tuple[tuple[str, str], ...] = ()
    """(type, value) as ``Контакт`` gives them: ``Почта``, ``ТелефонРабочий``..."""

    def contact(self, *prefixes: str) -> str:
        """The first contact whose type starts with one of the prefixes."""
        kinds = tuple(p.lower() for p in prefixes)
        return next((v for t, v in self.contacts if t.lower().startswith(kinds) and v), "")


@dataclass(frozen=True)
class Line:
    """A line of the order (``Товар``); delivery travels as a service line."""

    id: str = ""
    name: str = ""
    unit: str = ""
    price: str = ""
    quantity: str = ""
    amount: str = ""
    requisites: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Order:
    """One ``Документ`` of ``ХозОперация`` «Заказ товара», as read (times made aware)."""

    id: str
    number: str = ""
    date: str = ""
    """ISO 8601 with the tenant's offset (1C writes local time without one), or empty."""
    operation: str = ""
    role: str = ""
    currency: str = ""
    rate: str = ""
    amount: str = ""
    comment: str = ""
    """As 1C wrote it, the bridge's own lines included."""
    parties: tuple[Party, ...] = ()
    lines: tuple[Line, ...] = ()
    requisites: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def requisite(self, name: str) -> str:
        """A requisite's value (empty when absent)."""
        return next((v for n, v in self.requisites if n == name), "")

    def with_changes(self, notes: list[str], requisites: dict[str, str]) -> Order:
        """This order with the bridge's notes appended to its comment (those 1C does not
        have yet) and its requisites set."""
        have = set(self.comment.splitlines())
        lines = [self.comment] if self.comment else []
        lines += [n for n in notes if n not in have]
        merged = dict(self.requisites) | requisites
        return replace(self, comment="\n".join(lines), requisites=tuple(merged.items()))

    def merged(self, fresh: Order) -> Order:
        """This order (as the exchange carried it) with what 1C's OData says now: its
        comment and the requisites OData gives; the rest as the exchange last wrote it."""
        merged = dict(self.requisites) | dict(fresh.requisites)
        return replace(
            self,
            comment=fresh.comment,
            amount=self.amount or fresh.amount,
            requisites=tuple(merged.items()),
        )

    @property
    def buyer(self) -> Party:
        """The buyer (``Роль`` Покупатель), else the first counterparty."""
        for party in self.parties:
            if party.role.lower() == "покупатель":
                return party
        return self.parties[0] if self.parties else Party()

    def title(self) -> str:
        """How 1C presents a document: «Заказ 10452 от 14.03.2024»."""
        day = self.date[:10]
        when = f" от {day[8:10]}.{day[5:7]}.{day[:4]}" if len(day) == 10 else ""
        return f"Заказ {self.number or self.id}{when}"

    def fields(self, status: str, flags: dict[str, str]) -> dict[str, Any]:
        """The flat record a mapping reads: the document's own attributes under their
        CommerceML names, every requisite under its name, lines' requisites joined under
        ``Товары.<name>``, and ``Статус``: the status requisite without Bitrix's ``[N]``
        code, unless a flag (``Отменен``) is true and says otherwise."""
        raw: dict[str, Any] = dict(self.requisites)
        for name, values in _line_values(self.lines).items():
            raw[f"Товары.{name}"] = "; ".join(values)
        buyer = self.buyer
        raw |= {
            "Ид": self.id,
            "Номер": self.number,
            "Дата": self.date,
            "ХозОперация": self.operation,
            "Валюта": self.currency,
            "Сумма": self.amount,
            "Комментарий": own_comment(self.comment),
            "Представление": self.title(),
            "Контрагент": buyer.full_name or buyer.name,
            "Телефон": buyer.contact("телефон"),
            "Почта": buyer.contact("почта", "электроннаяпочта", "email"),
            "Статус": _STATUS_CODE.sub("", self.requisite(status)),
        }
        for flag, meaning in flags.items():
            if self.requisite(flag).strip().lower() in TRUE:
                raw["Статус"] = meaning
                break
        return raw

    def digest(self) -> str:
        """A hash of the whole order: equal digests, nothing changed."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def to_json(self) -> str:
        """The order as JSON (the store keeps it so)."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Order:
        """Inverse of ``asdict``."""
        parties = tuple(
            Party(**{**p, "contacts": tuple(map(tuple, p["contacts"]))}) for p in data["parties"]
        )
        lines = tuple(
            Line(**{**item, "requisites": tuple(map(tuple, item["requisites"]))})
            for item in data["lines"]
        )
        requisites = tuple(map(tuple, data["requisites"]))
        return cls(**{**data, "parties": parties, "lines": lines, "requisites": requisites})


def own_comment(comment: str) -> str:
    """The comment without the lines the bridge added (:data:`NOTE_MARK`)."""
    kept = [line for line in comment.splitlines() if not line.lstrip().startswith(NOTE_MARK)]
    return "\n".join(kept).strip()


def note_line(text: str, at: datetime, timezone: str) -> str:
    """One line of the bridge in an order's comment: «[Регламент 14.03.2024 10:12] text»."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{NOTE_MARK} {local:%d.%m.%Y %H:%M}] {' '.join(text.split())}"


def local_time(date: str, time: str, timezone: str) -> str:
    """1C's date and time (no offset) as ISO 8601 in the tenant's zone; empty when empty.

    Raises:
        ValueError: neither a date nor a date-time in a form 1C writes.
    """
    text = " ".join(part for part in (date.strip(), time.strip()) if part)
    if not text or text.startswith(EMPTY_DATES):
        return ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _russian_date(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.isoformat()


def _russian_date(text: str) -> datetime:
    # reports and CSV exports write 14.03.2024 10:05:12
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date 1C writes (2024-03-14T10:12:03, 14.03.2024 10:12)")


def _line_values(lines: tuple[Line, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"Наименование": [line.name for line in lines if line.name]}
    for line in lines:
        for name, value in line.requisites:
            if value and value not in out.setdefault(name, []):
                out[name].append(value)
    return out
