"""Rows in a table (the ``append_row`` action): a CSV or XLSX file, or a Google Sheet.

A tenant names its tables in ``bridge.yaml`` with their columns; a rule gives a row as
column -> text. Files are written under an exclusive lock (several workers may append at
once) and replaced atomically (XLSX); each row ends with the action's key in a column
``bridge``, which is how a retried job finds the row it already wrote and does not add it
twice. A Google Sheet (gspread, a service account's JSON key from the environment) gets the
same row through ``values:append``; there a retry after a crash may repeat it.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.actions import AppendRow
from bridge.config import read_secret
from bridge.errors import ConfigError, PermanentError, TransientError

if TYPE_CHECKING:
    from bridge.config import TableConfig, Tenant

KEY_COLUMN = "bridge"
"""The last column of every row: the first 12 characters of the action's key."""


def append(tenant: Tenant, row: AppendRow, key: str) -> dict[str, Any]:
    """Add one row to the tenant's table, once per action key.

    Returns:
        What the journal keeps: the table, and where the row went.

    Raises:
        PermanentError: unknown table, unreadable file, refused credentials.
        TransientError: the file is busy or Google did not answer (retried).
    """
    table = tenant.config.tables.get(row.table)
    if table is None:
        raise PermanentError(f"tenant {tenant.name} has no table {row.table!r}")
    values = [row.row.get(column, "") for column in table.columns] + [key[:12]]
    if table.google_sheet:
        return {"table": row.table, **append_to_sheet(table, values, sheets_client(table))}
    path = tenant.base / str(table.file)
    writer = _append_xlsx if path.suffix == ".xlsx" else _append_csv
    try:
        with _locked(path):
            added = writer(path, table, values)
    except OSError as exc:
        raise PermanentError(
            f"table {row.table}: cannot write {path.name}: {exc.strerror}"
        ) from None
    return {"table": row.table, "file": path.name, "added": added}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _append_csv(path: Path, table: TableConfig, values: list[str]) -> bool:
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if any(line and line[-1] == values[-1] for line in csv.reader(f)):
                return False  # written by an earlier attempt of the same action
    # utf-8 with a BOM: Excel opens Cyrillic text right
    with open(path, "a", encoding="utf-8-sig" if new else "utf-8", newline="") as f:
        out = csv.writer(f)
        if new:
            out.writerow([*table.columns, KEY_COLUMN])
        out.writerow(values)
    return True


def _append_xlsx(path: Path, table: TableConfig, values: list[str]) -> bool:
    from openpyxl import Workbook, load_workbook

    if path.exists():
        book = load_workbook(path)
        sheet = book[table.sheet] if table.sheet in book.sheetnames else book.active
    else:
        book = Workbook()
        sheet = book.active
        sheet.title = table.sheet or "Лист1"
        sheet.append([*table.columns, KEY_COLUMN])
    if any(r and r[-1] == values[-1] for r in sheet.iter_rows(values_only=True)):
        return False
    sheet.append(values)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".xlsx")
    os.close(handle)
    book.save(tmp)
    os.replace(tmp, path)  # readers never see half a file
    return True


def sheets_client(table: TableConfig) -> Any:
    """A gspread client authorised by the table's service account (its JSON key)."""
    import gspread

    try:
        info = json.loads(read_secret(str(table.credentials_env)))
    except ConfigError as exc:
        raise PermanentError("; ".join(exc.problems)) from None
    except ValueError:
        raise PermanentError(f"{table.credentials_env} does not hold a JSON key") from None
    return gspread.service_account_from_dict(info)


def append_to_sheet(table: TableConfig, values: list[str], client: Any) -> dict[str, Any]:
    """``spreadsheets.values.append`` of one row (through gspread), errors classified."""
    import gspread
    import requests

    def send() -> Any:
        book = client.open_by_key(table.google_sheet)
        sheet = book.worksheet(table.sheet) if table.sheet else book.sheet1
        return sheet.append_row(values, value_input_option="USER_ENTERED")

    answer = _classified(send, gspread.exceptions.APIError, requests.RequestException)
    return {"range": ((answer or {}).get("updates") or {}).get("updatedRange", "")}


def _classified(send: Callable[[], Any], api_error: type, network: type) -> Any:
    try:
        return send()
    except api_error as exc:
        status = getattr(getattr(exc, "response", None), "status_code", 0)
        text = f"Google Sheets answered {status}"
        raise (TransientError if status == 429 or status >= 500 else PermanentError)(text) from None
    except network as exc:
        raise TransientError(f"Google Sheets: {type(exc).__name__}") from None
