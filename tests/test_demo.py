"""`bridge demo --once`: the README's first command, on embedded defaults, exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.bitrix24_env import ROOT


def test_demo_once_plays_the_scenario_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the demo embeds its own
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "demo", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "▶ the client refuses, no reason given" in out
    assert "task «Укажите причину отказа: Ремонт офиса, пр. Мира 12» → user 3" in out
    assert "▶ the client refuses, reason recorded (deal 3)\n  nothing to do" in out
    assert "task «Зафиксируйте следующий контакт: Ремонт квартиры, ул. Ленина 5»" in out
