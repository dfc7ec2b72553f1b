"""The 1C store's upkeep by ``bridge cron``: closed orders 1C no longer changes are forgotten
after ``keep_closed_days`` (once 1C has taken what the bridge wrote to them), open ones never;
and an exchange that falls silent is an alert (shared/reference/onec.md §6.17: "surface '1C
did not call for N hours' as an alert — silent stops happen")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

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


def alerts(onec: OneCBridge) -> list[str]:
    events = [e["event"] for e in onec.runtime.journal.recent(50)]
    return [e.reason for e in events if e.status == "alert"]


def alerts_counted() -> float:
    labels = {"crm": "onec", "source": "check:silence"}
    return REGISTRY.get_sample_value("bridge_alerts_total", labels) or 0.0


def test_cron_looks_at_the_exchanges_pulse_every_five_minutes(onec: OneCBridge) -> None:
    [job] = [j for j in jobs.cron(onec.runtime).get_jobs() if j.func_name.endswith(".check")]
    assert (job.args, job.interval) == ((TENANT, "silence"), 300)


def test_an_exchange_that_falls_silent_is_an_alert_journaled_and_counted(
    make_onec, monkeypatch: pytest.MonkeyPatch
) -> None:
    onec: OneCBridge = make_onec(silent_minutes=60)
    assert sweeps.check(onec.runtime, TENANT, "silence") == "no problems"  # never exchanged yet
    assert onec.exchange().ok
    counted = alerts_counted()

    later(monkeypatch, 50 / 1440)
    assert sweeps.check(onec.runtime, TENANT, "silence") == "no problems"
    later(monkeypatch, 70 / 1440)
    assert sweeps.check(onec.runtime, TENANT, "silence").startswith("1C has not exchanged")
    [alert] = alerts(onec)
    assert alert.startswith("1C has not exchanged with the bridge for 1.2 h (last session ")
    assert alerts_counted() == counted + 1
    later(monkeypatch, 100 / 1440)
    assert sweeps.check(onec.runtime, TENANT, "silence") == "no problems"  # said 30 min ago
    later(monkeypatch, 135 / 1440)
    assert sweeps.check(onec.runtime, TENANT, "silence").startswith("1C has not exchanged")
    assert len(alerts(onec)) == 2 and alerts_counted() == counted + 2  # still silent: again

    assert onec.exchange().ok  # 1C is back
    later(monkeypatch, 190 / 1440)
    assert sweeps.check(onec.runtime, TENANT, "silence") == "no problems"
    assert len(alerts(onec)) == 2
