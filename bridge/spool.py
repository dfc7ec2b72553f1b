"""The local spool: events the ingress could not queue because Redis did not answer.

The ingress answers 200 only for an event it keeps. While Redis is down, an event is appended
to a file of this process in the spool folder and fsynced before the answer (an fsync per
webhook only during an outage; normally Redis with AOF keeps the event). A replayer in every
web process moves spooled events to the queue once Redis answers again, through the same
admission (so a duplicate is still folded); a file is taken under an exclusive lock, so two
processes never replay one file, and a dead process's file is replayed by whoever comes next.
If even the spool cannot be written, the ingress answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

log = logging.getLogger(__name__)

DEFAULT_FOLDER = Path("var/spool")
REPLAY_EVERY = 2.0  # seconds between a replayer's looks at the spool


class Spool:
    """Append-only files of ``{"tenant", "key", "fields"}`` lines, one file per process."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder or os.environ.get("BRIDGE_SPOOL") or DEFAULT_FOLDER)
        self._lock = threading.Lock()
        self._file: Path | None = None

    def keep(self, tenant: str, key: str, fields: dict[str, Any]) -> None:
        """Append one event and fsync it before returning.

        Raises:
            OSError: the spool cannot be written (the caller answers 503).
        """
        line = json.dumps({"tenant": tenant, "key": key, "fields": fields}, ensure_ascii=False)
        with self._lock:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = self.folder / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            with self._file.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
                os.fsync(out.fileno())

    def size(self) -> int:
        """Events waiting in the spool (all processes' files)."""
        return sum(_lines(path) for path in self._files())

    def replay(self, admit: Callable[[str, str, dict[str, Any]], Any]) -> int:
        """Hand every spooled event to ``admit``; returns how many went.

        A file is removed only once all its events went; a failure stops the replay and leaves
        the file (what went before is folded as a duplicate the next time).
        """
        moved = 0
        for path in self._files():
            with path.open("r+", encoding="utf-8") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another replayer has it
                for line in handle:
                    if line.strip():
                        item = json.loads(line)
                        admit(item["tenant"], item["key"], item["fields"])
                        moved += 1
                if path == self._file:
                    with self._lock:
                        self._file = None
                path.unlink()
        return moved

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("spool-*.jsonl")) if self.folder.is_dir() else []


def _lines(path: Path) -> int:
    try:
        with path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


class Replayer(threading.Thread):
    """A daemon thread of a web process: every few seconds, spooled events go to the queue.

    One per spool folder and process (:meth:`ensure`), however many apps the process builds.
    """

    _running: dict[Path, Replayer] = {}
    _guard = threading.Lock()

    @classmethod
    def ensure(cls, spool: Spool, admit: Callable[[str, str, dict[str, Any]], Any]) -> Replayer:
        """The process's replayer of ``spool``'s folder, started on first call."""
        with cls._guard:
            key = spool.folder.resolve()
            if key not in cls._running:
                cls._running[key] = cls(spool, admit)
                cls._running[key].start()
            return cls._running[key]

    def __init__(self, spool: Spool, admit: Callable[[str, str, dict[str, Any]], Any]) -> None:
        super().__init__(name="bridge-spool-replayer", daemon=True)
        self.spool, self.admit = spool, admit
        self.stopped = threading.Event()

    def run(self) -> None:
        """Replay until stopped; Redis still down means: try again later."""
        while not self.stopped.wait(REPLAY_EVERY):
            self.once()

    def once(self) -> int:
        """One replay; returns how many events moved."""
        try:
            moved = self.spool.replay(self.admit)
        except (redis.RedisError, OSError) as exc:
            log.debug("spool replay postponed: %s", type(exc).__name__)
            return 0
        if moved:
            log.warning("replayed %d spooled event(s) into the queue", moved)
        return moved
