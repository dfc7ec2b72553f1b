"""One tenant's CRM hangs: its events wait, the other tenants' go on (each drainer takes a
tenant of its own, and a hung request ends at its timeout, as a transient error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bridge.worker import Drainer
from tests.amocrm_env import (
    LOST,
    MEETING,
    ORDER_NEW,
    ORDERS,
    SMIRNOV,
    AmoBridge,
    lead,
)


def test_a_hung_account_holds_its_own_events_not_the_other_tenants(
    make_amo_bridge: Callable[..., AmoBridge],
) -> None:
    amo = make_amo_bridge(("remarka", "autoparts"))
    remarka, autoparts = amo.sandboxes["remarka"], amo.sandboxes["autoparts"]
    mine = remarka.add_lead(lead("Ремонт кухни", MEETING))
    theirs = autoparts.add_lead(lead("Колодки", ORDER_NEW, SMIRNOV, ORDERS))
    amo.work()
    hung = autoparts.stalled  # while set, the account answers nothing
    stop = threading.Event()
    drainers = [threading.Thread(target=Drainer(amo.runtime).run, args=(stop,)) for _ in range(2)]
    try:
        hung.set()
        for thread in drainers:
            thread.start()
        autoparts.update_lead(theirs, {"status_id": LOST})
        autoparts.wait_delivered()
        time.sleep(0.5)  # a drainer takes the autoparts tenant, and its read hangs
        started = time.monotonic()
        remarka.update_lead(mine, {"status_id": LOST})
        while not remarka.tasks_for(mine) and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert len(remarka.tasks_for(mine)) == 1  # served while autoparts hangs
        assert time.monotonic() - started < 5
        assert status_of_move(amo, theirs) != "processed"
        hung.clear()  # the account answers again: its event goes through, late, not lost
        deadline = time.monotonic() + 60
        while status_of_move(amo, theirs) != "processed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_of_move(amo, theirs) == "processed"
    finally:
        hung.clear()
        stop.set()
        for thread in drainers:
            thread.join(30)


def status_of_move(amo: AmoBridge, lead_id: int) -> str | None:
    """The journal's status of the lead's stage move (None: not journaled yet)."""
    moves = [
        e["event"]
        for e in amo.runtime.journal.recent(20, "autoparts")
        if e["event"].source == "leads[status]" and e["event"].record_id == str(lead_id)
    ]
    return moves[0].status if moves else None
