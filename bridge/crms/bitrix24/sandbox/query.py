"""Filter, order, select and paging as Bitrix24 list methods apply them.

Values reach the sandbox typed (JSON body) or as strings (form, query, batch command), and
Bitrix24 stores most scalars as strings, so every comparison goes through text or numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bridge.formdata import as_list

PAGE_SIZE = 50

# A Russian portal's server time. Every datetime the sandbox writes carries this offset, as
# D:api-reference/data-types.md describes (`2023-12-28T14:05:48+03:00`).
PORTAL_TZ = timezone(timedelta(hours=3))

# Filter prefixes, longest first so that "!=%" is not read as "!". The list is the union of
# D:api-reference/crm/deals/crm-deal-list.md, D:api-reference/user/user-get.md and
# D:api-reference/crm/timeline/activities/activity-base/crm-activity-list.md.
_PREFIXES = ("!=%", "!%=", "!@", ">=", "<=", "!=", "=%", "%=", "!%", ">", "<", "@", "!", "%", "=")
_LIKE_OPS = frozenset(("%", "=%", "%=", "!%", "!=%", "!%="))
_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class RestError(Exception):
    """A documented REST error: HTTP status plus the ``error``/``error_description`` body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error} {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """Return the JSON body Bitrix24 sends with this error."""
        return {"error": self.error, "error_description": self.description}


@dataclass
class Reply:
    """A method's outcome: ``result`` plus the list extras ``total`` and ``next``."""

    result: Any
    total: int | None = None
    next: int | None = None


def split_key(key: str) -> tuple[str, str]:
    """Split a filter key such as ``>=DATE_MODIFY`` into ``(">=", "DATE_MODIFY")``."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :]
    return "=", key


def matches(record: Mapping[str, Any], flt: Mapping[str, Any], field: Callable[[str], str]) -> bool:
    """Tell whether ``record`` passes every condition of ``flt``.

    Args:
        record: the stored entity.
        flt: filter conditions, keys optionally prefixed with an operation.
        field: maps a filter field name to the record's key (tasks filter UPPER, store camel).
    """
    for key, wanted in flt.items():
        op, name = split_key(str(key))
        if not _holds(op, record.get(field(name)), wanted):
            return False
    return True


def _holds(op: str, actual: Any, wanted: Any) -> bool:
    negate = op.startswith("!")
    if op in ("@", "!@"):
        hit = any(_equal(actual, w) for w in as_list(wanted))
    elif op in _LIKE_OPS:
        hit = _like(actual, wanted, exact_pattern=op not in ("%", "!%"))
    elif op in _ORDER_OPS:
        return _ordered(actual, wanted, _ORDER_OPS[op])
    else:
        hit = _equal(actual, wanted)
    return not hit if negate else hit


def text(value: Any) -> str:
    """Render a value the way PHP prints it into a string comparison."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def as_datetime(value: str) -> datetime | None:
    """Parse an ISO date or datetime; a naive one is read in portal time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PORTAL_TZ)


def _equal(actual: Any, wanted: Any) -> bool:
    # An array value means IN (D:api-reference/user/user-get.md: "can take array values").
    if isinstance(wanted, list | dict):
        return any(_equal(actual, w) for w in as_list(wanted))
    if isinstance(actual, list):
        return any(_equal(item, wanted) for item in actual)
    if isinstance(actual, bool):
        return actual == (text(wanted).lower() in ("y", "1", "true"))
    left, right = text(actual), text(wanted)
    if left == right:
        return True
    a, b = _number(left), _number(right)
    return a is not None and a == b


def _like(actual: Any, wanted: Any, *, exact_pattern: bool) -> bool:
    if isinstance(actual, list):
        return any(_like(item, wanted, exact_pattern=exact_pattern) for item in actual)
    haystack, needle = text(actual).lower(), text(wanted).lower()
    if not exact_pattern:
        return needle in haystack
    pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in needle)
    return re.fullmatch(pattern, haystack, re.S) is not None


def _ordered(actual: Any, wanted: Any, op: Callable[[Any, Any], bool]) -> bool:
    left, right = text(actual), text(wanted)
    if left == "":
        return False
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return op(a, b)
    da, db = as_datetime(left), as_datetime(right)
    if da is not None and db is not None:
        return op(da, db)
    return op(left, right)


def sort_key(value: Any) -> tuple[int, Any]:
    """Order None first, then numbers, datetimes and other text, each among its kind."""
    raw = text(value)
    if raw == "":
        return (0, 0)
    number = _number(raw)
    if number is not None:
        return (1, number)
    moment = as_datetime(raw)
    if moment is not None:
        return (2, moment.timestamp())
    return (3, raw.lower())


def order_records(
    records: list[dict[str, Any]],
    order: Mapping[str, Any] | None,
    default: Iterable[tuple[str, str]],
    field: Callable[[str], str] = str,
) -> list[dict[str, Any]]:
    """Sort records by ``order`` (``{"ID": "ASC"}``), falling back to ``default``."""
    keys = list(order.items()) if order else list(default)
    out = list(records)
    for name, direction in reversed(keys):
        key = field(str(name))
        out.sort(key=lambda r, k=key: sort_key(r.get(k)), reverse=text(direction).upper() == "DESC")
    return out


def paginate(items: list[Any], start: Any) -> Reply:
    """Cut one page of 50; ``start=-1`` skips the count (D:settings/performance/huge-data.md)."""
    offset = to_int(start) or 0
    if offset == -1:
        # The doc's sample of a start=-1 reply shows `[total] => 0` and no `next`.
        return Reply(items[:PAGE_SIZE], total=0)
    offset = max(offset, 0)
    page = items[offset : offset + PAGE_SIZE]
    more = offset + PAGE_SIZE < len(items)
    return Reply(page, total=len(items), next=offset + PAGE_SIZE if more else None)


def to_int(value: Any) -> int | None:
    """Read an integer from a JSON number or a string; None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def names(value: Any) -> list[str]:
    """Read a ``select`` list (JSON list, PHP array dict, or a single name)."""
    if value is None or value == "":
        return []
    return [str(v) for v in as_list(value)]


def normalize(value: Any) -> Any:
    """Store a value as Bitrix24 returns it: scalars as strings, PHP arrays as lists."""
    if isinstance(value, dict):
        if value and all(str(k).isdigit() for k in value):
            return [normalize(v) for v in as_list(value)]
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if value is None:
        return None
    return text(value)


def camel(name: str) -> str:
    """``RESPONSIBLE_ID`` -> ``responsibleId``; a name that is already camelCase stays."""
    if name != name.upper():
        return name
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def upper_snake(name: str) -> str:
    """``responsibleId`` -> ``RESPONSIBLE_ID``; an UPPER_CASE name stays."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() if name != name.upper() else name
