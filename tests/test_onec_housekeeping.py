"""The 1C store's upkeep by ``bridge cron``: closed orders 1C no longer changes are forgotten
after ``keep_closed_days`` (once 1C has taken what the bridge wrote to them), open ones never;
and an exchange that falls silent is an alert (shared/reference/onec.md §6.17: "surface '1C
did not call for N hours' as an alert — silent stops happen")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge import clock, jobs, sweeps
from tests.onec_env import TENANT, OneCBridge


def numbers(onec: OneCBridge) -> list[str]:
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    return sorted(k.order.number for k in conn.store.orders())


def later(monkeypatch: pytest.MonkeyPatch, days: float) -> datetime:
    moment = datetime.now().astimezone() + timedelta(days=days)
    monkeypatch.setattr(clock, "utcnow", lambda: moment)
    return moment


def test_cron_prunes_the_1c_store_hourly(onec: OneCBridge) -> None:
    [job] = [j for j in jobs.cron(onec.runtime).get_jobs() if j.func_name.endswith(".chore")]
    assert (job.args, job.interval) == ((TENANT, "prune"), 3600)


def test_closed_orders_older_than_keep_closed_days_are_forgotten(
    make_onec, monkeypatch: pytest.MonkeyPatch
) -> None:
    onec: OneCBridge = make_onec(keep_closed_days=30)
    day, signed = datetime(2025, 10, 30, 11, 0), "Клиент передумал, отменила Смирнова"
    onec.onec.add_order("ПТ-1", day, status="Принят", cancelled=True, comment=signed)
    onec.onec.add_order("ПТ-2", day, status="В работе")
    onec.onec.add_order("ПТ-3", day, status="Исполнен")
    assert onec.exchange().ok
    unsigned = onec.onec.add_order("ПТ-4", day, status="Принят", cancelled=True)
    assert onec.exchange(confirm=False).ok  # the bridge's note to ПТ-4 awaits 1C's success
    store = onec.runtime.connector(onec.runtime.tenant(TENANT)).store
    assert store.changes(unsigned.ref).pending

    later(monkeypatch, 20)
    recent = onec.onec.add_order("ПТ-5", day, status="Исполнен")
    assert onec.exchange(file=onec.onec.file([recent]), confirm=False).ok

    later(monkeypatch, 31)
    summary = sweeps.chore(onec.runtime, TENANT, "prune")
    assert summary.startswith("2 closed order(s) forgotten")
    assert numbers(onec) == ["ПТ-2", "ПТ-4", "ПТ-5"]  # open; 1C has not taken the note; recent
    assert list((store.root / "uploads").iterdir()) == []  # 31 days past their files' times
    assert list((store.root / "sent").iterdir()) == []  # queries never confirmed: stale

    assert onec.exchange().ok  # 1C takes ПТ-4's note at last
    assert not store.changes(unsigned.ref).pending
    assert sweeps.chore(onec.runtime, TENANT, "prune").startswith("1 closed order(s) forgotten")
    later(monkeypatch, 51)
    assert sweeps.chore(onec.runtime, TENANT, "prune").startswith("1 closed order(s) forgotten")
    assert numbers(onec) == ["ПТ-2"]  # an open order stays however old
