"""What a field's value means to a rule: empty or not, equal to what, earlier than what.

The same pack runs on every CRM, and CRMs write "nothing" differently: amoCRM's price is 0
when no one entered it, Bitrix24's list fields hold "0", a number comes back as ``7.0`` where
the rule says ``"7"``. The mapping gives each canonical field a type (:data:`FIELD_TYPES`),
and emptiness and comparisons follow it; an untyped field is judged by its value's shape.

An operand of a comparison may also be a reference: another field of the record (with an
offset: ``{field: created_at, minus: 1 month}``) or a tenant's constant
(``{constant: open_task_limit}``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from bridge.calendar import as_datetime
from bridge.deadlines import DeadlineKind, parse_deadline
from bridge.yamlfile import Strict

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope

FieldType = Literal["text", "number", "money", "date", "datetime", "list", "yesno", "user"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]
"""The types a mapping may give a canonical field (``type:`` in its long form)."""

_YES = {"1", "y", "yes", "true", "да"}
_NO = {"0", "n", "no", "false", "нет", ""}
_WORD = re.compile(r"[\wё-]+", re.IGNORECASE)


def _duration(value: str | None) -> str | None:
    if value is not None:
        deadline = parse_deadline(value)  # raises ValueError listing the accepted forms
        if deadline.kind is not DeadlineKind.CALENDAR or deadline.then is not None:
            raise ValueError(f"an offset is a plain duration such as '1 month', not {value!r}")
    return value


class Ref(Strict):
    """A value taken from the data: ``{field: created_at, minus: 1 month}``,
    ``{constant: season_start}``, or ``{role: supervip_staff}`` (its members' user ids)."""

    field: str | None = None
    constant: str | None = None
    role: str | None = Field(default=None, description="the user ids of a role's members")
    plus: str | float | None = Field(default=None, description="a duration or a number")
    minus: str | float | None = Field(default=None, description="a duration or a number")

    _offsets = field_validator("plus", "minus")(lambda v: _duration(v) if isinstance(v, str) else v)

    @model_validator(mode="after")
    def _one_source(self) -> Ref:
        if sum(x is not None for x in (self.field, self.constant, self.role)) != 1:
            raise ValueError("a reference names one of `field`, `constant` or `role`")
        if self.plus is not None and self.minus is not None:
            raise ValueError("a reference takes `plus` or `minus`, not both")
        return self

    def resolve(self, scope: Scope) -> Any:
        """The referenced value, its offset applied (a date moved, a number added)."""
        if self.role is not None:
            return list(scope.people.get(self.role, ()))
        if self.constant is not None:
            base = scope.constants.get(self.constant)
        else:
            base = scope.record.value(self.field or "")
        offset = self.plus if self.plus is not None else self.minus
        if offset is None or is_empty(base):
            return base
        if isinstance(offset, str):
            when = as_datetime(base, scope.calendar.timezone)
            if when is None:
                return None
            deadline = parse_deadline(offset)
            if self.plus is not None:
                moved = deadline.due(scope.calendar, when)
            else:
                moved = deadline.before(scope.calendar, when)
            return moved.date() if _bare_date(base) else moved  # a day stays a day
        number = as_number(base)
        if number is None:
            return None
        return number + offset if self.plus is not None else number - offset


def resolve(operand: Any, scope: Scope) -> Any:
    """An operand's value: a reference resolved, a list's items resolved, else as written."""
    if isinstance(operand, Ref):
        return operand.resolve(scope)
    if isinstance(operand, list):
        out: list[Any] = []
        for item in operand:
            value = resolve(item, scope)
            out.extend(value if isinstance(value, list | tuple) else [value])
        return out
    return operand


def is_empty(value: Any, kind: str | None = None) -> bool:
    """Empty as a manager means it, by the field's type.

    ``money``: 0 is empty (CRMs store "no amount" as 0); ``number``: only nothing is;
    ``list`` and ``user``: "0" is empty (no item chosen); ``text``: blank. Untyped: none,
    blank text, "0", an empty list.
    """
    if value is None:
        return True
    if isinstance(value, list | tuple | dict):
        return not value or all(is_empty(v, kind) for v in value)
    if kind == "money":
        number = as_number(value)
        return number is None or number == 0
    if kind in ("number", "date", "datetime", "yesno"):
        return str(value).strip() == ""
    if isinstance(value, str):
        text = value.strip()
        return text == "" or (text == "0" and kind != "text")
    return False


def equal(value: Any, operand: Any, kind: str | None = None) -> bool:
    """Equality by type: numbers as numbers ("7" == 7.0), dates as moments, yes/no by sense."""
    if value is None or operand is None:
        return value is None and operand is None
    if kind == "yesno" or (kind is None and isinstance(value, bool)):
        return _yes(value) == _yes(operand)
    if kind in ("number", "money") or (kind is None and _numeric(value, operand)):
        a, b = as_number(value), as_number(operand)
        return a is not None and a == b
    if kind in ("date", "datetime") or isinstance(operand, datetime | date):
        return compare(value, operand, "eq", kind, "UTC")
    return str(value) == str(operand)


def compare(value: Any, operand: Any, op: str, kind: str | None, zone: str) -> bool:
    """``value <op> operand`` (op: gt, gte, lt, lte, eq) as numbers, or as dates when either
    is one; a bare date is compared by calendar day. False when either is missing."""
    if kind in ("date", "datetime") or _is_date(value) or _is_date(operand):
        a, b = as_datetime(value, zone), as_datetime(operand, zone)
        if a is None or b is None:
            return False
        if kind == "date" or _bare_date(value) or _bare_date(operand):
            return _order(a.date(), b.date(), op)
        return _order(a, b, op)
    x, y = as_number(value), as_number(operand)
    return x is not None and y is not None and _order(x, y, op)


def mentions(text: Any, names: list[str], words: int = 0) -> bool:
    """Does ``text`` name one of ``names`` as a word (case and ё/е aside), with at least
    ``words`` other words besides (the reason written next to the surname)?"""
    tokens = [_fold(t) for t in _WORD.findall(str(text or ""))]
    wanted = {_fold(n) for n in names if n}
    hits = [t for t in tokens if t in wanted]
    return bool(hits) and len(tokens) - len(hits) >= words


def as_number(value: Any) -> float | None:
    """A value as a number ("1 500,50" too), or None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace("\u00a0", "").replace(" ", "").replace(",", "."))
    except (TypeError, ValueError):
        return None


def _order(a: Any, b: Any, op: str) -> bool:
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b, "eq": a == b}[op]


def _numeric(value: Any, operand: Any) -> bool:
    return isinstance(value, int | float) and as_number(operand) is not None


def _yes(value: Any) -> bool | None:
    text = str(value).strip().lower()
    return True if text in _YES else False if text in _NO else None


def _is_date(value: Any) -> bool:
    if isinstance(value, datetime | date):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d\d-\d\d([T ].*)?", value))


def _bare_date(value: Any) -> bool:
    if isinstance(value, date) and not isinstance(value, datetime):
        return True
    return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d\d-\d\d", value))


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е")
