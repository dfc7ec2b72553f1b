"""The Bitrix24 side of the tests: Remarka's portal in the sandbox, wired to a bridge on loopback.

The portal holds what config/mappings/remarka-bitrix24.yaml names (users, the «Ремонт»
pipeline, the refusal and next-contact fields), so the real pack runs on it. Its fixtures are
registered in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bridge.app import create_app
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.worker import run_worker

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "tests" / "fixtures" / "bridge.yaml"
EVENTS = ("ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMLEADADD", "ONCRMLEADUPDATE")

# (pipeline stage without the C1: prefix, name, semantics P/S/F)
STAGES = [
    ("NEW", "Первичное обращение", "P"),
    ("MEETING", "Встреча", "P"),
    ("ESTIMATE", "Подготовка КП", "P"),
    ("PRESENTATION", "Презентация КП", "P"),
    ("CREW", "Бронь бригады", "P"),
    ("CONTRACT", "Договор", "P"),
    ("POSTPONED", "Перенос", "P"),
    ("WON", "Договор подписан", "S"),
    ("LOSE", "Отказ", "F"),
    ("APOLOGY", "Анализ причины отказа", "F"),
]
USERS = [
    (1, "Админ"),
    (3, "Анна Иванова"),
    (5, "Пётр Петров"),
    (7, "Софья Сидорова"),
    (9, "Олег Орлов"),
]


def seed(sandbox: Bitrix24Sandbox) -> None:
    """Seed the sandbox as Remarka's portal: users, the "Ремонт" pipeline, its fields."""
    for uid, full in USERS:
        name, _, last = full.partition(" ")
        sandbox.add_user(uid, name, last)
    sandbox.add_pipeline(1, "Ремонт", STAGES)
    for code, label in (
        ("UF_CRM_1700000001", "Причина отказа"),
        ("UF_CRM_1700000002", "Дата и время следующего контакта"),
        ("UF_CRM_1700000003", "Цель следующего контакта"),
    ):
        sandbox.add_userfield("deal", code, "string", label)


def deal(title: str, stage: str = "C1:NEW", **extra: str) -> dict:
    """Fields of a new deal in the Ремонт pipeline, managed by Anna Ivanova."""
    return {"TITLE": title, "CATEGORY_ID": "1", "STAGE_ID": stage, "ASSIGNED_BY_ID": "3", **extra}


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
        run_worker(self.runtime, burst=True)

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
        seed(sandbox)
        monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", sandbox.webhook_url)
        monkeypatch.setenv("REMARKA_B24_APP_TOKEN", sandbox.application_token)
        rt = Runtime.build(str(config), journal_url, redis_url)
        env = Bridge(sandbox, rt, LoopbackServer(create_app(runtime=rt)).start())
        for name in EVENTS if subscribe else ():
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
