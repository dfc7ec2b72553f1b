"""`bridge explain EVENT_ID`: each rule's verdict and why, what was done and what failed."""

from __future__ import annotations

from datetime import datetime

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.models import Event, Record, RecordRef
from bridge.pipeline import plan_for
from bridge.regulations.engine import Facts
from bridge.regulations.pack import Pack
from tests.bitrix24_env import Bridge
from tests.test_flow_bitrix24 import lost_deal


def explain(event_id: int, journal_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    result = CliRunner().invoke(cli, ["explain", str(event_id)])
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_names_the_rule_that_acted_and_why_the_others_did_not(
    bridge: Bridge, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost_deal(bridge)
    entry = next(e for e in bridge.runtime.journal.recent() if e["actions"])
    out = explain(entry["event"].id, journal_url, monkeypatch)
    assert "rules that acted:\n  refusal-needs-reason: fired - missing: refusal_reason" in out
    assert "  quote-follow-up-call: not_matched - did not enter quote_presented" in out
    assert "actions:\n  create_task [done] task «Укажите причину отказа: Ремонт кухни»" in out


def test_explain_shows_which_part_of_a_condition_failed_and_the_value_it_saw(
    bridge: Bridge, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = bridge.runtime.journal
    event_id, _ = journal.record_event(tenant="remarka", crm="bitrix24", status="processed")

    pack = Pack.model_validate(
        {
            "pack": "p",
            "rules": [
                {
                    "id": "big-and-stuck",
                    "when": {
                        "if": {
                            "all": [
                                {"field": "amount", "gt": 500000},
                                {"stage_age": "5 working days"},
                            ]
                        }
                    },
                    "then": [{"add_comment": {"text": "x"}}],
                }
            ],
        }
    )
    tenant = bridge.runtime.tenant("remarka")
    monkeypatch.setattr(tenant, "packs", [pack])
    now = datetime.fromisoformat("2025-11-14T10:00:00+03:00")
    record = Record("deal", "5", "bitrix24", "meeting", amount=600000)
    event = Event("remarka", "bitrix24", "record.updated", RecordRef("deal", "5"), now)
    since = datetime.fromisoformat("2025-11-12T10:00:00+03:00")
    plan = plan_for(tenant, event, record, record, "1", Facts(stage_since=since))
    journal.add_decisions(event_id, list(plan.decisions))
    out = explain(event_id, journal_url, monkeypatch)
    assert (
        "big-and-stuck: not_matched - condition does not hold: all of: "
        "[{field: amount, gt: 500000} ✓ (amount is 600000), "
        "{stage_age: 5 working days} ✗ (in the stage since 2025-11-12 10:00)]"
    ) in out


def test_a_failed_action_shows_its_reason_in_the_journal_and_explain(
    bridge: Bridge, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = bridge.runtime.journal
    event_id, _ = journal.record_event(
        tenant="remarka", crm="bitrix24", kind="deal", record_id="5", status="processed"
    )
    journal.claim_action(
        "k1",
        event_id=event_id,
        tenant="remarka",
        rule="thanks",
        kind="send_email",
        record_kind="deal",
        record_id="5",
        summary="e-mail «thanks» to client",
    )
    why = "deal 5 has no e-mail address for 'client': the record has no contact"
    journal.settle_action("k1", "failed", error=why)
    out = explain(event_id, journal_url, monkeypatch)
    assert f"send_email [failed] e-mail «thanks» to client - {why}" in out
    listing = CliRunner().invoke(cli, ["journal"]).output
    assert f"action send_email [failed] e-mail «thanks» to client - {why}" in listing


def test_explain_of_an_unknown_event_says_so(journal_url: str, monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    result = CliRunner().invoke(cli, ["explain", "999"])
    assert result.exit_code == 2
    assert "no event #999 in the journal" in result.output
