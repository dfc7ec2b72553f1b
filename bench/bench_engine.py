"""How many events per second the pure engine evaluates against the largest pack (fireworks).

Run: .venv/bin/python bench/bench_engine.py   (a few seconds; prints one line)
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bridge.calendar import BusinessCalendar
from bridge.models import Event, Record, RecordRef
from bridge.regulations.engine import Context, evaluate
from bridge.regulations.pack import load_pack

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 3.0


def main() -> None:
    pack, _ = load_pack(ROOT / "config" / "regulations" / "fireworks.yaml")
    at = datetime(2025, 10, 22, 11, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    ctx = Context(at, BusinessCalendar("Europe/Moscow"), "1", {"head_of_sales": ("9",)})
    before = Record("deal", "1", "b24", stage="new", responsible="3", title="Заказ")
    after = Record(
        "deal", "1", "b24", stage="cancelled", outcome="lost", responsible="3", title="Заказ"
    )
    event = Event("t", "b24", "record.updated", RecordRef("deal", "1"), at)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        evaluate(event, after, before, pack.rules, ctx)
        count += 1
    elapsed = time.perf_counter() - start
    print(f"engine: {count / elapsed:,.0f} events/s against {len(pack.rules)} rules")


if __name__ == "__main__":
    main()
