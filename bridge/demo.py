"""``bridge demo``: the whole flow on embedded defaults, against a CRM's sandbox.

Starts an embedded Redis, a SQLite journal, the sandbox of the chosen CRM seeded from Remarka's
mapping for that CRM (``config/mappings/remarka-<crm>.yaml``), and the webhook server; plays
a short story through the real HTTP path (the sandbox posts events exactly as the CRM does);
prints what the bridge wrote back; keeps serving until Ctrl-C. The story is told in Remarka's
canonical words, so it is the same on every CRM: the pack does not change, only the mapping.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from bridge import crms
from bridge.app import create_app
from bridge.journal import migrate
from bridge.runtime import Runtime
from bridge.sandbox import Stand
from bridge.sandbox.server import LoopbackServer
from bridge.services import EmbeddedRedis
from bridge.trial.setup import sandbox_config
from bridge.worker import run_worker

CONFIG = Path("config/bridge.yaml")
TENANT = "remarka"
MANAGER = "ivanova"


def scenario(stand: Stand) -> list[tuple[str, Callable[[], str]]]:
    """The story: (what a manager does, the change, returning the deal id)."""
    reason = {"refusal_reason": "Выбрали другого подрядчика"}

    def move(deal_id: str, stage: str, **fields: Any) -> str:
        stand.update_record("deal", deal_id, stage=stage, fields=fields)
        return deal_id

    def add(title: str, stage: str) -> str:
        return stand.add_record("deal", title, stage, MANAGER)

    lenina = add("Ремонт квартиры, ул. Ленина 5", "estimate")
    mira = add("Ремонт офиса, пр. Мира 12", "meeting")
    sadovaya = add("Дизайн-проект, ул. Садовая 3", "quote_presented")
    return [
        ("a new request arrives", lambda: add("Ремонт ванной, ул. Гагарина 8", "first_contact")),
        ("the quote is presented", lambda: move(lenina, "quote_presented")),
        ("the client refuses, no reason given", lambda: move(mira, "lost")),
        ("the client refuses, reason recorded", lambda: move(sadovaya, "lost", **reason)),
        ("the contact is postponed, no date", lambda: move(lenina, "postponed")),
    ]


def _tenant() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["tenants"][TENANT]


def tenant_config(crm: str, connection: dict[str, Any], workdir: Path) -> Path:
    """Remarka's tenant from ``config/bridge.yaml``, on ``crm``, written to ``workdir``."""
    mapping = f"mappings/{TENANT}-{crm}.yaml"
    return sandbox_config(CONFIG, TENANT, connection, workdir, crm=crm, mapping=mapping)


def run(*, once: bool, port: int, crm: str | None = None) -> int:
    """Run the demo on ``crm`` (default: the CRM of Remarka's tenant); returns the exit code."""
    crm = crm or _tenant()["crm"]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the demo prints what matters
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    stand_class = crms.get(crm).stand_class()
    if stand_class is None:
        raise click.UsageError(f"{crm} ships no sandbox to play the demo on")
    stand: Stand = stand_class()
    stand.start()
    connection, secrets = stand.connection()
    os.environ.update(secrets)
    config = tenant_config(crm, connection, workdir)
    journal = f"sqlite:///{workdir / 'journal.db'}"
    migrate(journal)  # the explicit schema step, as `bridge migrate` is in production
    rt = Runtime.build(str(config), journal, EmbeddedRedis.shared().url)
    server = LoopbackServer(create_app(runtime=rt), port=port).start()
    try:
        stand.seed(rt.settings.tenants[TENANT])
        stand.connect(rt, server.url)
        click.echo(
            f"{crms.get(crm).title} sandbox and the bridge at {server.url}; journal: {workdir}"
        )
        failures = play(stand, rt)
        if once:
            return 1 if failures else 0
        click.echo(f"\nServing webhooks at {server.url}/hooks/{crm}/{TENANT}; Ctrl-C stops.")
        run_worker(rt)
        return 0
    finally:
        server.stop()
        stand.stop()


def play(stand: Stand, rt: Runtime) -> int:
    """Play the story step by step; returns how many events failed."""
    failures = 0
    for title, step in scenario(stand):
        _settle(stand, rt)  # the setup's own events first
        before = stand.written()
        deal_id = step()
        _settle(stand, rt)
        click.echo(f"\n▶ {title} (deal {deal_id})")
        new = list((Counter(stand.written()) - Counter(before)).elements())
        for line in new:
            click.echo(f"  {line}")
        if not new:
            click.echo("  nothing to do: the regulations are satisfied")
        failures += _failures(rt)
    return failures


def _settle(stand: Stand, rt: Runtime) -> None:
    stand.wait_delivered()
    run_worker(rt, burst=True)


def _failures(rt: Runtime) -> int:
    failed = [e for e in rt.journal.recent(10) if e["event"].status in ("failed", "retrying")]
    for entry in failed:
        click.echo(
            f"  ! event {entry['event'].id} {entry['event'].status}: {entry['event'].reason}"
        )
    return len(failed)
