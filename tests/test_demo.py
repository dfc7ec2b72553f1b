"""`bridge demo --once`: the README's first command, on embedded defaults, exits 0 — on every
CRM that ships a sandbox: the same pack and story where records are deals, and the fireworks
shop's order story on 1C, whose tasks its paired Bitrix24 makes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.bitrix24_env import ROOT


def demo(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the demo embeds its own
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "demo", "--once", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(
    ("args", "manager", "refused"),
    [((), "user 3", "deal 3"), (("--crm", "amocrm"), "user 5001", "deal 1000003")],
    ids=["bitrix24", "amocrm"],
)
def test_demo_once_plays_the_story_and_exits_0(
    args: tuple[str, ...], manager: str, refused: str
) -> None:
    out = demo(*args)
    assert "▶ the client refuses, no reason given" in out
    assert f"task «Укажите причину отказа: Ремонт офиса, пр. Мира 12» → {manager}" in out
    assert f"▶ the client refuses, reason recorded ({refused})\n  nothing to do" in out
    assert "task «Зафиксируйте следующий контакт: Ремонт квартиры, ул. Ленина 5»" in out


def test_demo_once_on_1c_plays_the_order_story_with_tasks_in_the_paired_crm() -> None:
    out = demo("--crm", "onec")
    assert "▶ an order is cancelled, the comment has no reason nor surname (order ДЕМО-0001)" in out
    assert (
        "  comment on 1C order ДЕМО-0001: Нарушение регламента: заказ отменён, а в комментарии "
        "нет причины отмены и фамилии оператора, отменившего заказ."
    ) in out
    assert "  task «Допишите в комментарий причину отмены и свою фамилию: Заказ ДЕМО-0001 от" in out
    assert "▶ an order is cancelled with the reason and the surname (order " in out
    satisfied = ")\n  nothing to do: the regulations are satisfied\n\n▶ an order is taken into work"
    assert satisfied in out
    assert "  field of 1C order ДЕМО-0003: В работе с = " in out
