"""The command 1C adds to ``bridge``: ``bridge import-1c FILE... --tenant NAME``.

Orders from files instead of the exchange: CommerceML (``.xml``, or a ``.zip`` of them) and
report exports (``.csv``, ``.xlsx``, read with the tenant's ``columns``). Each file is read
whole first, with a progress bar, so that a bad file is named at once and nothing of it is
kept; then it goes the way of an upload from 1C: kept, one ``batch`` event through the gate,
split into order events by the worker. Importing the same file again changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from bridge.crms.onec import OneC
from bridge.crms.onec.files import ERRORS, kind_of, read_orders
from bridge.crms.receive import Incoming
from bridge.errors import BridgeError, ConfigError
from bridge.models import BATCH


def import_files(host: Any, config_path: str | None, tenant_name: str, files: list[Path]) -> str:
    """Read, keep and queue each file; returns a summary line per file.

    Args:
        host: ``bridge``'s host object (:class:`bridge.cli.Host`): the runtime and the gate.

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
        try:
            kind = kind_of(path, conn.options)
            found = read_orders(path, kind, conn.options, conn.zone, _Bars())
        except ERRORS as exc:
            raise BridgeError(f"{path}: {exc}") from None
        changed = conn.unseen(found)
        sha = conn.store.keep(path, kind, move=False)
        event_id, status = gate.accept(_batch(tenant.name, sha, path, kind))
        lines.append(
            f"{path.name}: {len(found)} order(s), {changed} new or changed; "
            f"upload {sha[:12]} {status} (event {event_id})"
        )
    return "\n".join(lines)


def _batch(tenant: str, sha: str, path: Path, kind: str) -> Incoming:
    return Incoming(
        tenant=tenant,
        crm=OneC.name,
        source="import-1c",
        type=BATCH,
        kind="",
        record_id=sha,
        dedup_key=f"onec:upload:{sha}",
        payload={"file": path.name, "bytes": path.stat().st_size, "kind": kind},
    )


class _Bars:
    """Progress bars on stderr: rows of a report, bytes of an XML file."""

    def rows(self, table: Iterable[dict[str, str]], name: str) -> Iterator[dict[str, str]]:
        with click.progressbar(table, label=name, file=sys.stderr) as bar:
            yield from bar

    def stream(self, stream: IO[bytes], name: str) -> IO[bytes]:
        bar = click.progressbar(length=_size(stream) or 1, label=name, file=sys.stderr)
        return _Counted(stream, bar)  # type: ignore[return-value]


class _Counted:
    """A stream that moves a progress bar by the bytes read from it."""

    def __init__(self, stream: IO[bytes], bar: Any) -> None:
        self.stream, self.bar = stream, bar

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.bar.update(len(chunk))
        if not chunk:
            self.bar.render_finish()
        return chunk


def _size(stream: IO[bytes]) -> int:
    try:
        end = stream.seek(0, 2)
        stream.seek(0)
        return end
    except (AttributeError, OSError, ValueError):
        return 0  # a zip member: no length known ahead


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
