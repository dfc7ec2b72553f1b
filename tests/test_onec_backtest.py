"""Backtest over a 1C tenant: its orders' statuses in turn, as the exchange brought them to the
store, replayed through the fireworks-1c pack; the counts are what that history implies, and
nothing is written to 1C or the paired Bitrix24."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bridge import clock
from bridge.backtest import pack_of, run
from bridge.cli import cli
from tests.onec_env import TENANT, OneCBridge

MSK = ZoneInfo("Europe/Moscow")
SMIRNOVA = "3"


def seed_history(onec: OneCBridge, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Three orders that 1C's exchange brought over three days, 10 days back; returns the
    start (a Monday, 10:00 Moscow time).

    What the fireworks-1c pack implies, order by order:
    - ПТ-1 (Смирнова) cancelled, comment empty: cancelled-order-comment acts (a note, no
      breach) and, a working day later, cancelled-order-comment-escalation is overdue (1)
    - ПТ-2 (Кузнецова) cancelled with the reason and her surname: nothing
    - ПТ-3 (Смирнова) into work with a comment: nothing (the 7 days are a sweep, not replayed)
    """
    today = datetime.now(MSK).replace(hour=10, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=today.weekday() + 14)  # a Monday two weeks back
    made = start.replace(tzinfo=None) - timedelta(hours=1)
    sandbox = onec.onec

    def exchange_at(moment: datetime) -> None:
        monkeypatch.setattr(clock, "utcnow", lambda: moment)
        assert onec.exchange().ok

    first = sandbox.add_order("ПТ-1", made, status="Принят", manager="Смирнова Анна")
    second = sandbox.add_order("ПТ-2", made, status="Принят", manager="Кузнецова Мария")
    third = sandbox.add_order("ПТ-3", made, status="Принят", manager="Смирнова Анна")
    exchange_at(start)
    sandbox.change(first.ref, cancelled=True)
    sandbox.change(second.ref, cancelled=True, comment="Клиент передумал, отменила Кузнецова")
    exchange_at(start + timedelta(days=1))
    sandbox.change(third.ref, status="В работе", comment="ждём оплату по счёту")
    exchange_at(start + timedelta(days=2))
    monkeypatch.undo()
    return start


def first_ref(onec: OneCBridge, number: str) -> str:
    return next(o.ref for o in onec.onec.orders.values() if o.number == number)


def test_a_1c_history_gives_exactly_its_counts(make_onec, monkeypatch) -> None:
    onec: OneCBridge = make_onec()
    start = seed_history(onec, monkeypatch)
    tasks, comments = len(onec.tasks()), {o.number: o.comment for o in onec.onec.orders.values()}
    tenant = onec.runtime.tenant(TENANT)
    conn = onec.runtime.connector(tenant)

    result = run(
        tenant, pack_of(tenant, "fireworks-1c"), conn, start - timedelta(days=1), clock.utcnow()
    )

    assert (result.records, result.steps) == (3, 3 + 3)  # three orders made, three moves
    assert result.per_rule() == {"cancelled-order-comment-escalation": 1}
    assert result.per_manager() == {SMIRNOVA: 1}
    fired = {(j.rule, j.ref.id) for j in result.judged if j.verdict == "fired"}
    assert ("cancelled-order-comment", first_ref(onec, "ПТ-1")) in fired
    assert len(onec.tasks()) == tasks  # nothing written anywhere
    assert {o.number: o.comment for o in onec.onec.orders.values()} == comments

    later = run(
        tenant, pack_of(tenant, "fireworks-1c"), conn, start + timedelta(hours=36), clock.utcnow()
    )
    assert (later.steps, later.per_rule()) == (1, {})  # only ПТ-3's move into work


def test_bridge_backtest_prints_a_1c_tenants_counts(
    make_onec, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    onec: OneCBridge = make_onec()
    start = seed_history(onec, monkeypatch)
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    since = (start - timedelta(days=1)).date().isoformat()
    args = ["backtest", "fireworks-1c", "--tenant", TENANT, "--since", since]
    result = CliRunner().invoke(cli, [*args, "--config", str(onec.runtime.settings.path)])
    assert result.exit_code == 0, result.output
    assert "6 step(s) of 3 record(s), 1 violation(s)" in result.output
    assert "smirnova (3) · 1" in result.output


def test_a_move_counts_from_1cs_own_status_date_where_the_exchange_carries_it(
    make_onec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # «Дата изменения статуса»: the requisite Bitrix-style exchanges write (onec.md §2.1, §2.2)
    onec: OneCBridge = make_onec()
    start = datetime.now(MSK).replace(microsecond=0) - timedelta(days=5)
    order = onec.onec.add_order("ПТ-7", start.replace(tzinfo=None), status="Принят")
    monkeypatch.setattr(clock, "utcnow", lambda: start + timedelta(hours=1))
    assert onec.exchange().ok
    cancelled = start + timedelta(hours=3)
    told = {"Дата изменения статуса": f"{cancelled:%Y-%m-%d %H:%M:%S}"}
    onec.onec.change(order.ref, cancelled=True, requisites=told)
    monkeypatch.setattr(clock, "utcnow", lambda: start + timedelta(days=1))
    assert onec.exchange().ok  # the exchange brings it a day later
    bogus = {"Дата изменения статуса": f"{start - timedelta(days=1):%Y-%m-%d %H:%M:%S}"}
    onec.onec.change(order.ref, cancelled=False, status="В работе", requisites=bogus)
    monkeypatch.setattr(clock, "utcnow", lambda: start + timedelta(days=2))
    assert onec.exchange().ok  # a date before the last move is not believed

    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    steps = list(conn.history("order", start - timedelta(days=1)))
    assert [(s.at, s.record.stage, s.created) for s in steps] == [
        (start, "new", True),
        (cancelled, "cancelled", False),
        (start + timedelta(days=2), "in_work", False),
    ]
