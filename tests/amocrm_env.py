"""The amoCRM side of the tests: two seeded sandbox accounts wired to a bridge on loopback.

The accounts hold what config/mappings/remarka-amocrm.yaml and autoparts-amocrm.yaml name
(users, pipelines and stages, loss reasons, custom fields), so the real packs run on them.
Its fixtures are registered in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from bridge.app import create_app
from bridge.crms.amocrm.commands import authorize
from bridge.crms.amocrm.connector import AmoCRMConnector
from bridge.crms.amocrm.sandbox import AmoCRMSandbox
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.worker import run_worker

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "fixtures" / "amocrm.yaml"
ACCOUNTS = {"remarka": 30000001, "autoparts": 30000002}
SECRETS = {"remarka": "remarka-hook-s3cr3t", "autoparts": "autoparts-hook-s3cr3t"}
# what the sandbox posts (https://www.amocrm.ru/developers/content/crm_platform/webhooks-api)
EVENTS = ["add_lead", "update_lead", "status_lead", "note_lead", "add_task"]

# Remarka (config/mappings/remarka-amocrm.yaml)
IVANOVA, PETROV, SIDOROVA, ORLOV, KUZNETSOVA = 5001, 5002, 5003, 5004, 5005
REPAIR = 3104455
FIRST_CONTACT, MEETING, ESTIMATE, QUOTE, CREW, CONTRACT, POSTPONED = range(31044551, 31044558)
WON, LOST = 142, 143
NO_NEED, EXPENSIVE = 4203748, 4203749
NEXT_CONTACT_AT, NEXT_CONTACT_GOAL, VISIT_AT = 294471, 294472, 294473
# Auto-parts shop (config/mappings/autoparts-amocrm.yaml)
SMIRNOV, KUZMINA, VOLKOV = 6001, 6002, 6003
REQUESTS, ORDERS = 7001000, 7002000
REQUEST_NEW, REQUEST_IN_WORK, REQUEST_PROCESSED = 70010001, 70010002, 70010003
ORDER_NEW, ORDER_IN_WORK, ORDER_AWAITING_PAYMENT, ORDER_SHIPPING = range(70020001, 70020005)
REQUEST_TYPE, REQUEST_OUTCOME, RETURNING_CLIENT = 310001, 310002, 310003


def seed_remarka(sb: AmoCRMSandbox) -> None:
    """Remarka's account: its people, the «Ремонт» pipeline, loss reasons, date fields."""
    for uid, name in (
        (IVANOVA, "Иванова"),
        (PETROV, "Петров"),
        (SIDOROVA, "Сидорова"),
        (ORLOV, "Орлов"),
        (KUZNETSOVA, "Кузнецова"),
    ):
        sb.add_user(uid, name, f"user{uid}@remarka.example")
    stages = ["Первичное обращение", "Встреча", "Подготовка КП", "Презентация КП"]
    stages += ["Бронь бригады", "Договор", "Перенос"]
    sb.add_pipeline(
        REPAIR, "Ремонт", list(zip(range(FIRST_CONTACT, POSTPONED + 1), stages, strict=True))
    )
    sb.add_loss_reason(NO_NEED, "Пропала потребность")
    sb.add_loss_reason(EXPENSIVE, "Дорого")
    names = ["Дата и время следующего контакта", "Цель следующего контакта"]
    names += ["Дата и время встречи на объекте", "Замеры переданы в сметный отдел"]
    names += ["Смета рассчитана", "Смета согласована", "Дата и время встречи по договору"]
    names += ["Обратная связь клиента"]
    for field_id, name in zip(range(294471, 294479), names, strict=True):
        kind = "text" if field_id == NEXT_CONTACT_GOAL else "date_time"
        sb.add_custom_field(field_id, name, "textarea" if field_id == 294478 else kind)


def seed_autoparts(sb: AmoCRMSandbox) -> None:
    """The shop's account: managers, the requests and orders pipelines, list fields."""
    for uid, name in ((SMIRNOV, "Смирнов"), (KUZMINA, "Кузьмина"), (VOLKOV, "Волков")):
        sb.add_user(uid, name, f"user{uid}@stodetaley.example")
    sb.add_pipeline(
        REQUESTS,
        "Обращения",
        [(REQUEST_NEW, "Не обработан"), (REQUEST_IN_WORK, "В работе"), (70010003, "Обработан")],
    )
    orders = ["Новый заказ", "Подбор и резерв", "Ожидает оплаты", "Доставка"]
    sb.add_pipeline(
        ORDERS, "Заказы", list(zip(range(ORDER_NEW, ORDER_SHIPPING + 1), orders, strict=True))
    )
    types = ["Подбор запчастей", "Возврат", "Отказ от заказа", "Где мой заказ", "Другое"]
    outcomes = ["Оформлен заказ", "Консультация", "Возврат оформлен", "Отказ оформлен"]
    outcomes += ["Сообщён статус", "Детали нет", "Клиент отказался"]
    sb.add_custom_field(
        REQUEST_TYPE, "Тип обращения", "select", list(zip(range(3101, 3106), types, strict=True))
    )
    sb.add_custom_field(
        REQUEST_OUTCOME,
        "Итог обращения",
        "select",
        list(zip(range(3111, 3118), outcomes, strict=True)),
    )
    sb.add_custom_field(
        RETURNING_CLIENT, "Постоянный клиент", "select", [(3121, "да"), (3122, "нет")]
    )


SEEDS: dict[str, Callable[[AmoCRMSandbox], None]] = {
    "remarka": seed_remarka,
    "autoparts": seed_autoparts,
}


def lead(
    name: str, status: int, responsible: int = IVANOVA, pipeline: int = REPAIR, **extra: Any
) -> dict[str, Any]:
    """A lead in v4 shape for ``AmoCRMSandbox.add_lead``."""
    return {
        "name": name,
        "status_id": status,
        "pipeline_id": pipeline,
        "responsible_user_id": responsible,
        **extra,
    }


@dataclass
class AmoBridge:
    """amoCRM accounts -> webhook server -> queue -> worker, all on loopback."""

    sandboxes: dict[str, AmoCRMSandbox]
    runtime: Runtime
    server: LoopbackServer

    @property
    def sandbox(self) -> AmoCRMSandbox:
        """Remarka's account (most tests need only one)."""
        return self.sandboxes.get("remarka") or next(iter(self.sandboxes.values()))

    def hook_url(self, tenant: str = "remarka", secret: str | None = None) -> str:
        """Where an account posts its hooks (the secret is part of the path)."""
        return f"{self.server.url}/hooks/amocrm/{tenant}/{secret or SECRETS[tenant]}"

    def connector(self, tenant: str = "remarka") -> AmoCRMConnector:
        """The runtime's connector of a tenant."""
        return self.runtime.connector(self.runtime.tenant(tenant))  # type: ignore[return-value]

    def work(self) -> None:
        """Wait for the accounts' posts, then run the worker until the queue is empty."""
        for sb in self.sandboxes.values():
            sb.wait_delivered()
        run_worker(self.runtime, burst=True)

    def settle(self) -> None:
        """Work until nothing is posted or queued any more (echoes included)."""
        for _ in range(6):
            before = sum(len(sb.deliveries) for sb in self.sandboxes.values())
            self.work()
            if sum(len(sb.deliveries) for sb in self.sandboxes.values()) == before:
                return


def write_config(tmp: Path, sandboxes: dict[str, AmoCRMSandbox]) -> Path:
    """The tenants file with the sandboxes' addresses and absolute paths, in ``tmp``."""
    text = CONFIG.read_text(encoding="utf-8").replace("../../config/", f"{ROOT}/config/")
    for name, sb in sandboxes.items():
        text = text.replace(f"http://{name}.sandbox.invalid", sb.base_url)
    path = tmp / "amocrm.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def make_amo_bridge(
    redis_url: str,
    redis_conn: redis.Redis,
    journal_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., AmoBridge]]:
    """Build seeded accounts, a bridge authorized on them, and hooks subscribed to it."""
    started: list[AmoBridge] = []

    def build(
        tenants: tuple[str, ...] = ("remarka",), *, events: list[str] | None = None
    ) -> AmoBridge:
        sandboxes = {}
        for name in tenants:
            sb = AmoCRMSandbox(subdomain=name, account_id=ACCOUNTS[name]).start()
            SEEDS[name](sb)
            sandboxes[name] = sb
            monkeypatch.setenv(f"{name.upper()}_AMO_CLIENT_SECRET", "sandbox-secret")
            monkeypatch.setenv(f"{name.upper()}_AMO_HOOK_SECRET", SECRETS[name])
        rt = Runtime.build(str(write_config(tmp_path, sandboxes)), journal_url, redis_url)
        env = AmoBridge(sandboxes, rt, LoopbackServer(create_app(runtime=rt)).start())
        started.append(env)
        for name, sb in sandboxes.items():
            authorize(rt, name, sb.issue_code())
            sb.subscribe(env.hook_url(name), EVENTS if events is None else events)
        return env

    yield build
    for env in started:
        env.server.stop()
        for sb in env.sandboxes.values():
            sb.stop()


@pytest.fixture
def amo(make_amo_bridge: Callable[..., AmoBridge]) -> AmoBridge:
    """Remarka's amoCRM account wired to a bridge."""
    return make_amo_bridge()
