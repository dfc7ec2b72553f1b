"""Orders from a 1C report exported as CSV or XLSX (``bridge import-1c``), for onboarding and
for shops that only export.

Reports are what a person sees (shared/reference/onec.md §3.4): Russian headers, sums such as
``1 234,56`` with a no-break space, dates ``14.03.2024 10:05:12``, grouping and total rows, no
GUIDs. The tenant's ``columns`` setting says which header is which: the attributes of an order
(``Ид``, ``Номер``, ``Дата``, ``Сумма``, ``Комментарий``, ``Контрагент``, ``Телефон``,
``Почта``) or a requisite by its name (``Статус заказа``, ``Менеджер``). A row without a
number, or without a date when a column holds the date, is no order: a group's heading
carries its name in the first column, a total its sum. Without an ``Ид`` column the number is
the order's identity: such orders are not the ones the exchange uploads, so use one channel
per tenant, or export the GUID.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from bridge.crms.onec.order import Order, Party, local_time

ATTRIBUTES = ("Ид", "Номер", "Дата", "Сумма", "Комментарий", "Контрагент", "Телефон", "Почта")
TABULAR = (".csv", ".xlsx")
_SPACES = re.compile(r"[\s\u00a0\u202f]")


class TableError(Exception):
    """A report the bridge cannot read as orders (the message names the file and the fix)."""


def rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a CSV or XLSX report as ``{header: text}``, the header row first found."""
    if path.suffix.lower() == ".xlsx":
        yield from _xlsx_rows(path)
    else:
        yield from _csv_rows(path)


def orders(
    table: Iterator[dict[str, str]], columns: dict[str, str], timezone: str, name: str
) -> Iterator[Order]:
    """Orders of a report's rows.

    Raises:
        TableError: no column is mapped to ``Номер`` or ``Ид``, or a date 1C never writes.
    """
    targets = set(columns.values())
    if not targets & {"Ид", "Номер"}:
        raise TableError(f"{name}: no column of `columns` is mapped to Номер or Ид")
    dated = "Дата" in targets
    for line, row in enumerate(table, 2):
        values = {columns[h]: v for h, v in row.items() if h in columns and v is not None}
        number = values.get("Номер", "").strip()
        order_id = values.get("Ид", "").strip() or number
        if not order_id or (dated and not values.get("Дата", "").strip()):
            continue  # a group's heading (its name in the first column) or a total
        try:
            yield _order(order_id, number, values, timezone)
        except ValueError as exc:
            raise TableError(f"{name}, row {line}: {exc}") from None


def _order(order_id: str, number: str, values: dict[str, str], timezone: str) -> Order:
    buyer = Party(
        name=values.get("Контрагент", ""),
        role="Покупатель",
        contacts=tuple(
            (kind, values[key])
            for key, kind in (("Телефон", "Телефон"), ("Почта", "Почта"))
            if values.get(key)
        ),
    )
    requisites = tuple((k, v.strip()) for k, v in values.items() if k not in ATTRIBUTES)
    return Order(
        id=order_id,
        number=number,
        date=local_time(values.get("Дата", ""), "", timezone),
        amount=_number(values.get("Сумма", "")),
        comment=values.get("Комментарий", "").strip(),
        parties=(buyer,) if buyer.name or buyer.contacts else (),
        requisites=requisites,
    )


def _number(text: str) -> str:
    """``1 234,56`` (no-break spaces, a decimal comma) as ``1234.56``."""
    return _SPACES.sub("", text).replace(",", ".")


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("windows-1251")  # what 1C writes by default
    dialect: type[csv.Dialect] | csv.Dialect
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=";,\t")
    except csv.Error:
        dialect = _Semicolons
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, [])
    for row in reader:
        yield {h.strip(): v for h, v in zip(header, row, strict=False)}


class _Semicolons(csv.excel):
    delimiter = ";"  # 1C's default for CSV


def _xlsx_rows(path: Path) -> Iterator[dict[str, str]]:
    from openpyxl import load_workbook  # only import-1c of XLSX needs it

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.active
        header: list[str] = []
        for cells in sheet.iter_rows(values_only=True):
            texts = [_cell(c) for c in cells]
            if not header:
                header = texts if sum(bool(t) for t in texts) >= 2 else []
                continue
            yield {h: t for h, t in zip(header, texts, strict=False) if h}
    finally:
        book.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
