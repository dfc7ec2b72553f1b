"""``bridge demo``: the whole flow on embedded defaults, against the Bitrix24 sandbox.

Starts an embedded Redis, a SQLite journal, the Bitrix24 sandbox seeded as Remarka's portal,
and the webhook server; plays a short scenario through the real HTTP path (the sandbox posts
events exactly as a portal does); prints what the bridge did; keeps serving until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from bridge.app import create_app
from bridge.runtime import Runtime
from bridge.sandbox.bitrix24 import Bitrix24Sandbox
from bridge.sandbox.server import LoopbackServer
from bridge.services import EmbeddedRedis
from bridge.worker import run_worker

CONFIG = Path("config/bridge.yaml")
TENANT = "remarka"
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


def scenario(sb: Bitrix24Sandbox) -> list[tuple[str, Callable[[], int]]]:
    """The example steps: (what a manager does, the change, returning the deal id)."""
    reason = {"UF_CRM_1700000001": "Выбрали другого подрядчика"}

    def move(deal_id: int, stage: str, **fields: str) -> int:
        sb.update_deal(deal_id, {"STAGE_ID": stage, **fields}, by_user=3)
        return deal_id

    lenina = sb.add_deal(deal("Ремонт квартиры, ул. Ленина 5", "C1:ESTIMATE"))
    mira = sb.add_deal(deal("Ремонт офиса, пр. Мира 12", "C1:MEETING"))
    sadovaya = sb.add_deal(deal("Дизайн-проект, ул. Садовая 3", "C1:PRESENTATION"))
    return [
        ("a new request arrives", lambda: sb.add_deal(deal("Ремонт ванной, ул. Гагарина 8"))),
        ("the quote is presented", lambda: move(lenina, "C1:PRESENTATION")),
        ("the client refuses, no reason given", lambda: move(mira, "C1:LOSE")),
        ("the client refuses, reason recorded", lambda: move(sadovaya, "C1:LOSE", **reason)),
        ("the contact is postponed, no date", lambda: move(lenina, "C1:POSTPONED")),
    ]


def run(*, once: bool, port: int) -> int:
    """Run the demo; returns the exit code."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the demo prints what matters
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    redis_url = EmbeddedRedis.shared().url
    sandbox = Bitrix24Sandbox(webhook_code="demo-webhook-secret").start()
    seed(sandbox)
    os.environ["REMARKA_B24_WEBHOOK_URL"] = sandbox.webhook_url
    os.environ["REMARKA_B24_APP_TOKEN"] = sandbox.application_token
    rt = Runtime.build(str(CONFIG), f"sqlite:///{workdir / 'journal.db'}", redis_url)
    server = LoopbackServer(create_app(runtime=rt), port=port).start()
    for name in EVENTS:
        sandbox.subscribe(name, f"{server.url}/hooks/bitrix24/{TENANT}")
    click.echo(f"Bitrix24 sandbox: {sandbox.base_url}   bridge: {server.url}   journal: {workdir}")
    try:
        failures = play(sandbox, rt)
        if once:
            return 1 if failures else 0
        click.echo(f"\nServing webhooks at {server.url}/hooks/bitrix24/{TENANT}; Ctrl-C stops.")
        run_worker(rt)
        return 0
    finally:
        server.stop()
        sandbox.stop()


def play(sandbox: Bitrix24Sandbox, rt: Runtime) -> int:
    """Play the scenario step by step; returns how many events failed."""
    failures = 0
    for title, step in scenario(sandbox):
        sandbox.wait_delivered()
        run_worker(rt, burst=True, with_scheduler=False)  # the setup's own events first
        seen = _counts(sandbox)
        deal_id = step()
        sandbox.wait_delivered()
        run_worker(rt, burst=True, with_scheduler=False)
        click.echo(f"\n▶ {title} (deal {deal_id})")
        failures += _report(sandbox, rt, seen)
    return failures


def _counts(sandbox: Bitrix24Sandbox) -> tuple[int, int]:
    return len(sandbox.tasks), len(sandbox.comments)


def _report(sandbox: Bitrix24Sandbox, rt: Runtime, seen: tuple[int, int]) -> int:
    tasks = list(sandbox.tasks.values())[seen[0] :]
    comments = list(sandbox.comments.values())[seen[1] :]
    for task in tasks:
        click.echo(
            f"  task «{task['TITLE']}» → user {task['RESPONSIBLE_ID']}, "
            f"deadline {task.get('DEADLINE') or '-'} ({', '.join(task['UF_CRM_TASK'])})"
        )
    for comment in comments:
        click.echo(
            f"  comment on {comment['ENTITY_TYPE']} {comment['ENTITY_ID']}: {comment['COMMENT']}"
        )
    if not tasks and not comments:
        click.echo("  nothing to do: the regulations are satisfied")
    failed = [e for e in rt.journal.recent(10) if e["event"].status in ("failed", "retrying")]
    for entry in failed:
        click.echo(
            f"  ! event {entry['event'].id} {entry['event'].status}: {entry['event'].reason}"
        )
    return len(failed)
