"""A portal's bad day: a share of its REST calls fail (500, 503 rate limit) or answer after the
bridge's timeout although the write landed. Every lost deal still gets its one task: failures
only delay, and a write whose answer never came is found on the retry, not made twice.

Errors as D:_includes/system-errors.md gives them (see the sandbox's ``Weather``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bridge.crms.bitrix24.sandbox import Weather
from tests.bitrix24_env import TEST_CONFIG, Bridge, deal

DEALS = 40
WEATHER = Weather(errors=0.15, rate_limited=0.15, late=0.15, late_seconds=1.2, seed=7)


def impatient_config(folder: Path) -> Path:
    """The test tenant with a 0.5 s HTTP timeout and retries enough to outlast the weather."""
    data = yaml.safe_load(TEST_CONFIG.read_text(encoding="utf-8"))
    tenant = data["tenants"]["remarka"]
    tenant["connection"]["timeout"] = 0.5
    tenant["retry_intervals"] = [0] * 50
    tenant["mapping"] = str((TEST_CONFIG.parent / tenant["mapping"]).resolve())
    tenant["regulations"] = [str((TEST_CONFIG.parent / p).resolve()) for p in tenant["regulations"]]
    path = folder / "bridge.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def reason_tasks(bridge: Bridge, deal_id: int) -> int:
    titles = [t["TITLE"] for t in bridge.sandbox.tasks_for(f"D_{deal_id}")]
    return sum(title.startswith("Укажите причину отказа") for title in titles)


def test_failing_and_late_answers_delay_the_tasks_never_double_them(
    make_bridge: Callable[..., Bridge], tmp_path: Path
) -> None:
    bridge = make_bridge(impatient_config(tmp_path))
    ids = [bridge.sandbox.add_deal(deal(f"Ремонт {n}", "C1:MEETING")) for n in range(DEALS)]
    bridge.settle()
    bridge.sandbox.set_weather(WEATHER)
    for deal_id in ids:
        bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    deadline = time.monotonic() + 120
    while any(reason_tasks(bridge, i) == 0 for i in ids) and time.monotonic() < deadline:
        bridge.work()
    bridge.settle()  # late retries and the portal's echoes of the bridge's own writes
    assert [reason_tasks(bridge, i) for i in ids] == [1] * DEALS
    assert all(bridge.sandbox.weathered.values()), bridge.sandbox.weathered  # it did rain
    assert bridge.runtime.journal.failed("remarka") == []
