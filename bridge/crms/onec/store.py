"""One 1C tenant's files: uploads on their way in, uploads kept, orders, the bridge's changes.

1C has no API the bridge can read at will: what the bridge knows of an order is what 1C last
uploaded, and what it wants 1C to take back waits here until 1C asks (``mode=query``) and
confirms (``mode=success``). Plain files in one folder (``store`` of the tenant's settings),
shared by the web process and the workers; every read-modify-write holds the folder's lock,
every write is a new file renamed into place (a crash leaves the old version or the new one).

    incoming/<session>/<name>  chunks of an upload being received (appended)
    uploads/<sha256>.<ext>     uploads kept, by content (the same upload is kept once)
    orders/<key>.json          the order as 1C last uploaded it
    changes/<key>.json         the bridge's notes and requisites for it, versioned
    sent/<session>.json        what ``query`` gave 1C in a session, until ``success``
    exchange.json              when 1C last opened an exchange session (``checkauth``)
    silence.json               when the bridge last alerted that 1C fell silent
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bridge.crms.onec import OneCSettings
from bridge.crms.onec.order import Order
from bridge.crms.onec.uploads import UploadRefused

CHUNK = 64 * 1024
REFUSED = ".refused"  # in a session's folder: it refused a file (names of files never start so)


@dataclass(frozen=True)
class Kept:
    """An order as the store keeps it: what 1C sent, when, and in which upload."""

    order: Order
    digest: str
    seen_at: str
    upload: str


@dataclass
class Changes:
    """What the bridge wrote to one order: comment lines and requisites, each by the key of
    the action that wrote it. ``version`` counts writes; ``delivered`` is the version 1C
    confirmed having taken."""

    id: str
    version: int = 0
    delivered: int = 0
    notes: list[str] = field(default_factory=list)
    requisites: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Written but not yet confirmed by 1C."""
        return self.version > self.delivered


class Store:
    """The files of one tenant under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, tenant: Any, settings: OneCSettings) -> Store:
        """A tenant's store: ``<store>/<tenant>``, the folder relative to its config file."""
        return cls(Path(tenant.base) / settings.store / tenant.name)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock (between processes of one host)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- uploads --------------------------------------------------------------------------

    def incoming(self, session: str) -> Path:
        """The folder of a session's uploads being received."""
        return self.root / "incoming" / session

    def reset(self, session: str) -> None:
        """Forget what a session received and did not finish (``init`` starts afresh)."""
        shutil.rmtree(self.incoming(session), ignore_errors=True)

    def append(self, session: str, name: str, body: IO[bytes], limit: int) -> int:
        """Append a chunk to a file being received; returns the file's size.

        Raises:
            UploadRefused: the file grew past ``limit``, or the session refused a file
                before (its later chunks would make a file with a hole).
        """
        self.check(session)
        path = self.incoming(session) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            while chunk := body.read(CHUNK):
                out.write(chunk)
                if out.tell() > limit:
                    out.close()
                    self.refuse(session)
                    raise UploadRefused(f"файл {name} больше {limit} байт")
            return out.tell()

    def refuse(self, session: str) -> None:
        """Drop what a session received, and refuse its further steps until ``init``."""
        self.reset(session)
        self.incoming(session).mkdir(parents=True, exist_ok=True)
        (self.incoming(session) / REFUSED).touch()

    def check(self, session: str) -> None:
        """Raises :class:`UploadRefused` when the session refused a file since its ``init``."""
        if (self.incoming(session) / REFUSED).exists():
            raise UploadRefused("обмен прерван после отказа: начните заново (mode=init)")

    def received(self, session: str) -> list[Path]:
        """The files a session received and did not finish yet.

        Raises:
            UploadRefused: the session refused a file since its ``init``.
        """
        self.check(session)
        folder = self.incoming(session)
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def keep(self, path: Path, kind: str, *, move: bool = True) -> str:
        """Put a file among the kept uploads (moved, or copied: a file a person imports);
        returns its content's SHA-256."""
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        sha = digest.hexdigest()
        target = self.root / "uploads" / f"{sha}.{kind}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not move:
            copy = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(path, copy)
            path = copy
        with path.open("rb") as stream:
            os.fsync(stream.fileno())
        os.replace(path, target)
        return sha

    def upload(self, sha: str) -> Path:
        """A kept upload by its SHA-256.

        Raises:
            FileNotFoundError: no such upload (or the store is not shared with this process).
        """
        found = sorted((self.root / "uploads").glob(f"{sha}.*"))
        if not found:
            raise FileNotFoundError(f"no upload {sha[:12]} under {self.root / 'uploads'}")
        return found[0]

    # -- orders ---------------------------------------------------------------------------

    def order(self, order_id: str) -> Kept | None:
        """An order as 1C last uploaded it."""
        data = _read(self._path("orders", order_id))
        return _kept(data) if data else None

    def orders(self) -> Iterator[Kept]:
        """Every order kept."""
        for path in sorted((self.root / "orders").glob("*.json")):
            data = _read(path)
            if data:
                yield _kept(data)

    def put(self, kept: Kept) -> None:
        """Keep an order's new state."""
        data = {**asdict(kept), "order": json.loads(kept.order.to_json())}
        _write(self._path("orders", kept.order.id), data)

    def forget(self, order_id: str) -> None:
        """Drop an order and the bridge's changes to it (call under :meth:`lock`)."""
        for folder in ("orders", "changes", "moves"):
            self._path(folder, order_id).unlink(missing_ok=True)

    def prune_files(self, uploads_before: float, sessions_before: float) -> int:
        """Remove kept uploads last written before one moment, and what exchanges left
        unfinished (received chunks, a ``query`` never confirmed) before another (POSIX
        times); returns how many files and folders went."""
        gone = 0
        for path in (self.root / "uploads").glob("*"):
            if path.is_file() and path.stat().st_mtime < uploads_before:
                path.unlink(missing_ok=True)
                gone += 1
        for path in (self.root / "sent").glob("*.json"):
            if path.stat().st_mtime < sessions_before:
                path.unlink(missing_ok=True)  # its orders stay pending: the next query sends them
                gone += 1
        for folder in (self.root / "incoming").glob("*"):
            if _newest(folder) < sessions_before:
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        return gone

    def moves(self, order_id: str) -> list[tuple[str, str]]:
        """An order's statuses in turn: (when it entered it, ISO 8601; the status)."""
        data = _read(self._path("moves", order_id))
        return [(at, status) for at, status in data["moves"]] if data else []

    def moved(self, order_id: str, at: str, status: str) -> None:
        """Note the order's status as of ``at``, if it is not the last one noted (call under
        :meth:`lock`)."""
        moves = self.moves(order_id)
        if not moves or moves[-1][1] != status:
            _write(self._path("moves", order_id), {"moves": [*moves, (at, status)]})

    # -- the exchange's pulse -------------------------------------------------------------

    def exchanged(self, at: datetime) -> None:
        """1C opened an exchange session at ``at``."""
        _write(self.root / "exchange.json", {"at": at.isoformat()})

    def last_exchange(self) -> datetime | None:
        """When 1C last opened an exchange session (None: never, as far as the store knows)."""
        return _moment(self.root / "exchange.json")

    def silence_alerted(self, at: datetime | None = None) -> datetime | None:
        """When the bridge last alerted that 1C fell silent; with ``at``, remember that."""
        path = self.root / "silence.json"
        if at is not None:
            _write(path, {"at": at.isoformat()})
        return _moment(path)

    # -- the bridge's changes -------------------------------------------------------------

    def changes(self, order_id: str) -> Changes:
        """What the bridge wrote to an order (nothing yet: an empty record)."""
        data = _read(self._path("changes", order_id))
        return Changes(**data) if data else Changes(order_id)

    def all_changes(self) -> Iterator[Changes]:
        """Every order's changes."""
        for path in sorted((self.root / "changes").glob("*.json")):
            data = _read(path)
            if data:
                yield Changes(**data)

    def put_changes(self, changes: Changes) -> None:
        """Store an order's changes (call under :meth:`lock`)."""
        _write(self._path("changes", changes.id), asdict(changes))

    def mark_sent(self, session: str, sent: list[tuple[str, int]]) -> None:
        """Remember which versions ``query`` handed 1C in a session."""
        _write(self.root / "sent" / f"{session}.json", {"sent": sent})

    def confirm(self, session: str) -> int:
        """1C confirmed a session's ``query``: those versions are delivered; returns how
        many orders. Changes written after the query stay pending."""
        path = self.root / "sent" / f"{session}.json"
        sent = (_read(path) or {}).get("sent", [])
        with self.lock():
            for order_id, version in sent:
                changes = self.changes(order_id)
                changes.delivered = max(changes.delivered, version)
                self.put_changes(changes)
            path.unlink(missing_ok=True)
        return len(sent)

    def _path(self, folder: str, order_id: str) -> Path:
        # an Ид may be a GUID, a number or "guid#guid": named by its hash, kept inside
        key = hashlib.sha256(order_id.encode()).hexdigest()[:40]
        return self.root / folder / f"{key}.json"


def _moment(path: Path) -> datetime | None:
    data = _read(path)
    return datetime.fromisoformat(data["at"]) if data else None


def _newest(folder: Path) -> float:
    """The last time anything in a folder was written (appends leave the folder's own mtime)."""
    return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.rglob("*"))])


def _kept(data: dict[str, Any]) -> Kept:
    return Kept(**{**data, "order": Order.from_data(data["order"])})


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


__all__ = ["Changes", "Kept", "Store", "UploadRefused"]
