"""The command 1C adds to ``bridge``: ``bridge import-1c FILE... --tenant NAME``.

Orders from files instead of the exchange: CommerceML (``.xml``, or a ``.zip`` of them, as
1C's "Выгрузка заказов в файл" writes it) and report exports (``.csv``, ``.xlsx``) read with
the tenant's ``columns``. Each file is checked and read whole before anything of it is kept,
with a progress bar; then the orders that changed are kept and queued as events, exactly as
when 1C uploads them. Importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from bridge import clock
from bridge.crms.onec import OneC, commerceml
from bridge.crms.onec.order import Order
from bridge.crms.onec.tabular import TABULAR, TableError, orders, rows
from bridge.crms.onec.uploads import UploadRefused, inspect, xml_members
from bridge.errors import BridgeError, ConfigError


def import_files(host: Any, config_path: str | None, tenant_name: str, files: list[Path]) -> str:
    """Read, keep and queue the orders of each file; returns a summary line per file.

    Raises:
        ConfigError: no such 1C tenant.
        BridgeError: a file that cannot be read (nothing of it is kept).
    """
    rt = host.runtime(config_path)
    tenant = rt.tenant(tenant_name)
    if tenant is None or tenant.config.crm != OneC.name:
        raise ConfigError([f"no 1C tenant {tenant_name!r} in {rt.settings.path}"])
    conn, gate = rt.connector(tenant), host.gate(rt)
    lines = []
    for path in files:
        found = read_file(path, conn)
        upload = _sha256(path)
        items = conn.ingest(found, at=clock.utcnow(), upload=upload, source="import-1c")
        counts = Counter(gate.accept(item)[1] for item in items)
        lines.append(
            f"{path.name}: {len(found)} order(s), {len(items)} new or changed, "
            f"{counts['queued']} queued"
        )
    return "\n".join(lines)


def read_file(path: Path, conn: Any) -> list[Order]:
    """Every order of one file, read with a progress bar.

    Raises:
        BridgeError: unreadable, over a limit, not CommerceML, a report without the columns.
    """
    settings, zone = conn.options, conn.zone
    try:
        if path.suffix.lower() in TABULAR:
            with click.progressbar(rows(path), label=path.name, file=sys.stderr) as table:
                return list(orders(iter(table), settings.columns, zone, path.name))
        inspect(path, settings.limits)
        with xml_members(path, settings.limits) as members:
            return [order for name, stream in members for order in _read(name, stream, zone)]
    except (OSError, UploadRefused, TableError, commerceml.CommerceMLError) as exc:
        raise BridgeError(f"{path}: {exc}") from None


def _read(name: str, stream: IO[bytes], zone: str) -> list[Order]:
    with click.progressbar(length=_size(stream) or 1, label=name, file=sys.stderr) as bar:
        return commerceml.read(_Counted(stream, bar), zone)


def _size(stream: IO[bytes]) -> int:
    try:
        end = stream.seek(0, 2)
        stream.seek(0)
        return end
    except (AttributeError, OSError, ValueError):
        return 0  # a zip member: no length known ahead


class _Counted:
    """A stream that moves a progress bar by the bytes read from it."""

    def __init__(self, stream: IO[bytes], bar: Any) -> None:
        self.stream, self.bar = stream, bar

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.bar.update(len(chunk))
        return chunk


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in _chunks(stream):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(1024 * 1024):
        yield chunk


@click.command("import-1c")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tenant", required=True, help="The 1C tenant of the bridge's config.")
@click.option("--config", "path", default=None, help="Config file (default: $BRIDGE_CONFIG).")
@click.pass_obj
def import_1c(host: Any, files: tuple[Path, ...], tenant: str, path: str | None) -> None:
    """Import 1C orders from CommerceML (.xml, .zip) or report exports (.csv, .xlsx)."""
    try:
        click.echo(import_files(host, path, tenant, list(files)))
    except BridgeError as exc:
        click.echo(f"import-1c: {exc}", err=True)
        sys.exit(1)
