"""``bridge broadcast``: G4's mailing to every client, on a Bitrix24 portal in the sandbox.

The service tenant of config/bridge.yaml runs on the Bitrix24 stand (seeded from
config/mappings/service-bitrix24.yaml). The broadcast lists every deal and lead through
``crm.deal.list`` / ``crm.lead.list`` filtered by ``>DATE_MODIFY``
(D:api-reference/crm/deals/crm-deal-list.md), won and lost ones too, and mails each client
once (the deal's contact, D:api-reference/crm/contacts/crm-contact-get.md; the lead's own
``EMAIL``), into the tenant's outbox.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import broadcast, demo
from bridge.cli import cli
from bridge.crms.bitrix24.sandbox.stand import Bitrix24Stand
from bridge.errors import ConfigError
from bridge.models import RecordRef
from bridge.runtime import Runtime

RULE = "new-product-2025-11-service-plan"


@dataclass
class Portal:
    stand: Bitrix24Stand
    rt: Runtime
    outbox: Path
    config: Path

    def recipients(self) -> list[str]:
        """The addressees of the e-mails sent so far."""
        found = []
        for path in sorted(self.outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(str(message["To"]))
        return sorted(found)


@pytest.fixture
def portal(
    redis_url: str, journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Portal]:
    stand = Bitrix24Stand()
    stand.start()
    block, secrets = stand.connection()
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    path = demo.tenants_config({"service": ("bitrix24", block)}, tmp_path)
    rt = Runtime.build(str(path), journal_url, redis_url)
    tenant = rt.tenant("service")
    assert tenant is not None
    stand.seed(tenant)
    stand.seed_contacts()
    yield Portal(stand, rt, tmp_path / "outbox", path)
    stand.stop()


def clients(portal: Portal) -> dict[str, str]:
    """Three clients' records: an open offer, a deal won long ago and a second deal of the
    same client, a lost deal; and a lead of its own."""
    anna, boris, vera = portal.stand.contacts
    add = portal.stand.add_record
    return {
        "open": add("deal", "Вектор: офис", "offer", "volkova", contact=anna.id),
        "won": add("deal", "Смирнов: сервис", "won", "volkova", contact=boris.id),
        "won-again": add("deal", "Смирнов: склад", "won", "sokolov", contact=boris.id),
        "lost": add("deal", "Павлова: дача", "lost", "sokolov", contact=vera.id),
        "lead": add("lead", "Заявка с сайта", "new", "volkova", contact=anna.id),
    }


def test_a_dry_run_counts_every_client_open_or_closed_and_sends_nothing(portal: Portal) -> None:
    clients(portal)
    outcome = broadcast.run(portal.rt, "service", RULE)
    assert (outcome.listed, outcome.clients) == (5, 4)  # Smirnov's two deals: one client
    assert not portal.outbox.exists() or portal.recipients() == []


def test_send_mails_each_client_once_and_marks_the_records(portal: Portal) -> None:
    made = clients(portal)
    outcome = broadcast.run(portal.rt, "service", RULE, send=True)
    assert outcome.clients == 4
    assert portal.recipients() == [
        "anna.smirnova@client.example",  # the open deal's client
        "anna.smirnova@client.example",  # ...and the lead, which carries her e-mail itself
        "boris.kuznetsov@client.example",  # the won deals' client, once
        "vera.pavlova@client.example",  # the lost deal's client
    ]
    connector = portal.rt.connector(portal.rt.tenant("service"))
    won = connector.fetch(RecordRef("deal", made["won"]))
    assert won.fields["product_news_sent"] == "2025-11-service-plan"
    again = broadcast.run(portal.rt, "service", RULE, send=True)
    assert again.clients == 0  # a second run sends nothing
    assert len(portal.recipients()) == 4


def test_the_command_counts_first_and_names_a_wrong_rule(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients(portal)
    monkeypatch.setenv("BRIDGE_CONFIG", str(portal.config))
    journal = portal.rt.journal.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal)
    result = CliRunner().invoke(cli, ["broadcast", "service", RULE])
    assert result.exit_code == 0, result.output
    assert "5 record(s) listed; would inform 4 client(s); nothing sent" in result.output
    own = "its broadcast rules: new-product-2025-11-novelty-first, new-product-2025-11-service-plan"
    with pytest.raises(ConfigError, match=own):
        broadcast.run(portal.rt, "service", "quality-sheet")
