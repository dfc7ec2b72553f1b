"""Shared fixtures: a real Redis (flushed), a journal (SQLite or PostgreSQL), the sandbox."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bridge import demo, services
from bridge.app import create_app
from bridge.runtime import Runtime
from bridge.sandbox.bitrix24 import Bitrix24Sandbox
from bridge.sandbox.server import LoopbackServer
from bridge.worker import run_worker
from tests.amocrm_env import amo, make_amo_bridge  # noqa: F401 - the amoCRM fixtures

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "tests" / "fixtures" / "bridge.yaml"
TEST_DB = int(os.environ.get("BRIDGE_TEST_REDIS_DB", "9"))  # flushed around each test
PG_ADMIN_URL = os.environ.get("BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """REDIS_URL if set, else the Redis on 127.0.0.1:6379, else an embedded one."""
    base = services.redis_url()
    return f"{base.rsplit('/', 1)[0]}/{TEST_DB}"


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A flushed Redis database."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A fresh SQLite journal."""
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; skipped where no server answers."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bridge_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # noqa: BLE001 - any failure means: no server here
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {type(exc).__name__}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@dataclass
class Bridge:
    """The whole flow on loopback: sandbox portal -> webhook server -> queue -> worker."""

    sandbox: Bitrix24Sandbox
    runtime: Runtime
    server: LoopbackServer

    @property
    def hook_url(self) -> str:
        """Where the portal posts its events."""
        return f"{self.server.url}/hooks/bitrix24/remarka"

    def work(self) -> None:
        """Wait for the portal's deliveries, then run the worker until the queue is empty."""
        self.sandbox.wait_delivered()
        run_worker(self.runtime, burst=True, with_scheduler=False)

    def settle(self) -> None:
        """Work until nothing is delivered or queued any more (echoes included)."""
        for _ in range(5):
            before = len(self.sandbox.deliveries)
            self.work()
            if len(self.sandbox.deliveries) == before:
                return


@pytest.fixture
def make_bridge(
    redis_url: str, redis_conn: redis.Redis, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Bridge]]:
    """Build Remarka's portal in the sandbox, wired to a bridge on a configuration file."""
    started: list[Bridge] = []

    def build(config: Path = TEST_CONFIG, *, subscribe: bool = True) -> Bridge:
        sandbox = Bitrix24Sandbox().start()
        demo.seed(sandbox)
        monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", sandbox.webhook_url)
        monkeypatch.setenv("REMARKA_B24_APP_TOKEN", sandbox.application_token)
        rt = Runtime.build(str(config), journal_url, redis_url)
        env = Bridge(sandbox, rt, LoopbackServer(create_app(runtime=rt)).start())
        for name in demo.EVENTS if subscribe else ():
            sandbox.subscribe(name, env.hook_url)
        started.append(env)
        return env

    yield build
    for env in started:
        env.server.stop()
        env.sandbox.stop()


@pytest.fixture
def bridge(make_bridge: Callable[..., Bridge]) -> Bridge:
    """Remarka's portal in the sandbox, wired to a bridge on the example configuration."""
    return make_bridge()
