"""A report as a table: a title, column headers and rows; exported as CSV or XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_TYPE}


@dataclass(frozen=True)
class Table:
    """One report: ``name`` (a file name stem), a Russian ``title``, columns and rows."""

    name: str
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)

    def column(self, index: int) -> list[Any]:
        """The values of one column, top to bottom."""
        return [row[index] for row in self.rows]

    @property
    def total(self) -> int | float:
        """The sum of the last column (the count most reports end with)."""
        return sum(row[-1] for row in self.rows if isinstance(row[-1], int | float))


def to_csv(table: Table) -> bytes:
    """The table as CSV in UTF-8 with a BOM, so that Excel opens Cyrillic text right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    writer.writerows([_cell(v) for v in row] for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table) -> bytes:
    """The table as an XLSX workbook of one sheet, headers in bold."""
    book = Workbook()
    sheet = book.active
    sheet.title = table.title[:31] or "report"  # Excel's limit on sheet names
    sheet.append(list(table.columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_xlsx_cell(v) for v in row])
    for letter, width in zip("ABCDEFGHIJ", _widths(table), strict=False):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(table: Table, fmt: str) -> bytes:
    """The table in ``fmt`` (``csv`` or ``xlsx``).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "csv":
        return to_csv(table)
    if fmt == "xlsx":
        return to_xlsx(table)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return "" if value is None else value


def _xlsx_cell(value: Any) -> Any:
    # openpyxl refuses aware datetimes: the sheet shows UTC, said in the column's header
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return value


def _widths(table: Table) -> list[int]:
    cells = [table.columns, *table.rows]
    return [
        min(60, max(10, *(len(str(_cell(row[i]))) + 2 for row in cells)))
        for i in range(len(table.columns))
    ]
