"""What a file of orders holds, whatever it is: CommerceML (an ``.xml``, or a ``.zip`` of them,
as 1C's exchange or its "Выгрузка заказов в файл" writes it) or a report export (``.csv``,
``.xlsx``, read with the tenant's ``columns``). The worker reads kept uploads with it;
``bridge import-1c`` reads a person's files with it first, to show progress and errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol

from bridge.crms.onec import OneCSettings, commerceml
from bridge.crms.onec.order import Order
from bridge.crms.onec.tabular import TableError, orders, rows
from bridge.crms.onec.uploads import UploadRefused, inspect, xml_members

REPORTS = ("csv", "xlsx")
ERRORS = (OSError, UploadRefused, TableError, commerceml.CommerceMLError)
"""What reading a file may raise: its message says what is wrong with the file."""


class Progress(Protocol):
    """Where reading reports how far it got (``bridge import-1c`` shows a bar)."""

    def rows(self, table: Iterable[dict[str, str]], name: str) -> Iterator[dict[str, str]]:
        """The rows of a report, counted as they are read."""

    def stream(self, stream: IO[bytes], name: str) -> IO[bytes]:
        """An XML stream, counted as it is read."""


def kind_of(path: Path, settings: OneCSettings) -> str:
    """The kind of a file: a report by its suffix, else ``xml`` or ``zip`` once checked.

    Raises:
        UploadRefused: a CommerceML file over the limits (:func:`uploads.inspect`).
    """
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in REPORTS else inspect(path, settings.limits)


def read_orders(
    path: Path, kind: str, settings: OneCSettings, zone: str, progress: Progress | None = None
) -> list[Order]:
    """Every order of a file of the given kind, read whole.

    Raises:
        One of :data:`ERRORS`.
    """
    if kind in REPORTS:
        table = rows(path)
        counted = progress.rows(table, path.name) if progress else table
        return list(orders(iter(counted), settings.columns, zone, path.name))
    with xml_members(path, settings.limits) as members:
        streams = [progress.stream(s, name) if progress else s for name, s in members]
        return [order for stream in streams for order in commerceml.read(stream, zone)]
