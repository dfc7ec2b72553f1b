"""``bridge demo``: the whole flow on embedded defaults, against a CRM's sandbox.

Starts an embedded Redis, a SQLite journal, the sandbox of the chosen CRM seeded from Remarka's
mapping for that CRM (``config/mappings/remarka-<crm>.yaml``), and the webhook server; plays
a short story through the real HTTP path (the sandbox posts events exactly as the CRM does);
prints what the bridge wrote back; keeps serving until Ctrl-C. The story is told in Remarka's
canonical words, so it is the same on every CRM: the pack does not change, only the mapping.

A CRM whose records are no deals names another tenant of config/bridge.yaml to play
(``Stand.demo_tenant``, with its own story); when that tenant has its tasks made by another
(``tasks_in``), the other tenant's CRM gets a stand too, and its writes are shown as well.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
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
from bridge.trial.setup import tenant_block, write_config
from bridge.worker import run_worker

CONFIG = Path("config/bridge.yaml")
TENANT = "remarka"
MANAGER = "ivanova"
OPERATOR = "smirnova"


Story = list[tuple[str, Callable[[], str]]]


def scenario(stand: Stand) -> Story:
    """Remarka's story: (what a manager does, the change, returning the deal id)."""
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


def orders_scenario(stand: Stand) -> Story:
    """The fireworks shop's orders (rules F6, F7): cancelled without and with the reason and
    the operator's surname in the comment, and an order taken into work."""

    def move(order: str, stage: str, **fields: Any) -> str:
        stand.update_record("order", order, stage=stage, fields=fields)
        return order

    first, second, third = (
        stand.add_record("order", buyer, "new", OPERATOR)
        for buyer in ("Иванов Пётр", "Петрова Ольга", "ООО «Праздник»")
    )
    return [
        (
            "an order is cancelled, the comment has no reason nor surname",
            lambda: move(first, "cancelled", comment="Клиент передумал"),
        ),
        (
            "an order is cancelled with the reason and the surname",
            lambda: move(second, "cancelled", comment="Клиент передумал, отменила Смирнова"),
        ),
        ("an order is taken into work", lambda: move(third, "in_work", comment="ждём оплату")),
    ]


STORIES: dict[str, Callable[[Stand], Story]] = {TENANT: scenario, "fireworks-1c": orders_scenario}
"""The story of each tenant a stand may ask for (``Stand.demo_tenant``)."""


def _tenants() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["tenants"]


def tenant_config(crm: str, connection: dict[str, Any], workdir: Path) -> Path:
    """Remarka's tenant from ``config/bridge.yaml``, on ``crm`` (its stand's ``connection``),
    written to ``workdir`` (benchmarks and ``bridge demo`` play it)."""
    return tenants_config({TENANT: (crm, connection)}, workdir)


def tenants_config(stands: dict[str, tuple[str, dict[str, Any]]], workdir: Path) -> Path:
    """The tenants of ``config/bridge.yaml`` named in ``stands`` (name -> the CRM to play it
    on and the stand's connection block), written to ``workdir``.

    A tenant played on its own CRM keeps its connection settings, pointed at the stand; on
    another CRM its mapping is ``mappings/<tenant>-<crm>.yaml``.
    """
    blocks = {}
    for name, (crm, connection) in stands.items():
        moved = {} if _tenants()[name]["crm"] == crm else {"crm": crm}
        if moved:
            moved["mapping"] = f"mappings/{name}-{crm}.yaml"
        blocks[name] = tenant_block(CONFIG, name, connection, workdir, **moved)
    return write_config(workdir, blocks)


def run(*, once: bool, port: int, crm: str | None = None) -> int:
    """Run the demo on ``crm`` (default: the CRM of Remarka's tenant); returns the exit code."""
    crm = crm or _tenants()[TENANT]["crm"]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the demo prints what matters
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    stands = _stands(crm)
    name, (_, stand) = next(iter(stands.items()))
    blocks = {}
    for tenant, (tenant_crm, one) in stands.items():
        one.start()
        connection, secrets = one.connection()
        os.environ.update(secrets)
        blocks[tenant] = (tenant_crm, connection)
    config = tenants_config(blocks, workdir)
    journal = f"sqlite:///{workdir / 'journal.db'}"
    migrate(journal)  # the explicit schema step, as `bridge migrate` is in production
    rt = Runtime.build(str(config), journal, EmbeddedRedis.shared().url)
    server = LoopbackServer(create_app(runtime=rt), port=port).start()
    try:
        for tenant, (_, one) in stands.items():
            one.seed(rt.settings.tenants[tenant])
        stand.connect(rt, server.url)
        click.echo(
            f"{crms.get(crm).title} sandbox and the bridge at {server.url}; journal: {workdir}"
        )
        others = [one for _, one in list(stands.values())[1:]]
        failures = play(stand, rt, STORIES[name], crms.get(crm).record_kinds[0].name, others)
        if once:
            return 1 if failures else 0
        click.echo(f"\nServing webhooks at {server.url}/hooks/{crm}/{name}; Ctrl-C stops.")
        run_worker(rt)
        return 0
    finally:
        server.stop()
        for _, one in stands.values():
            one.stop()


def _stands(crm: str) -> dict[str, tuple[str, Stand]]:
    """The stand of ``crm`` under its demo tenant, and the stand of the tenant it names in
    ``tasks_in`` (on that tenant's own CRM), if any."""
    stand_class = crms.get(crm).stand_class()
    if stand_class is None:
        raise click.UsageError(f"{crm} ships no sandbox to play the demo on")
    stands = {stand_class.demo_tenant: (crm, stand_class())}
    paired = _tenants()[stand_class.demo_tenant].get("tasks_in")
    if paired:
        paired_crm = _tenants()[paired]["crm"]
        stands[paired] = (paired_crm, crms.get(paired_crm).stand_class()())
    return stands


def play(
    stand: Stand,
    rt: Runtime,
    story: Callable[[Stand], Story],
    kind: str,
    others: Sequence[Stand] = (),
) -> int:
    """Play a story step by step; returns how many events failed. ``kind``: what the stand's
    records are called; ``others``: stands of paired tenants, whose writes are shown too."""
    everyone = [stand, *others]

    def written() -> list[str]:
        return [line for one in everyone for line in one.written()]

    failures = 0
    for title, step in story(stand):
        _settle(stand, rt)  # the setup's own events first
        before = written()
        record_id = step()
        _settle(stand, rt)
        click.echo(f"\n▶ {title} ({kind} {stand.label(kind, record_id)})")
        new = list((Counter(written()) - Counter(before)).elements())
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
