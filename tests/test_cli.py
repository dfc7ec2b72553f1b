"""The admin's commands: check, dry-run, journal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import cli
from bridge.journal import Journal
from bridge.models import Decision
from tests.bitrix24_env import ROOT, TEST_CONFIG


def test_check_passes_on_the_example_pack() -> None:
    result = CliRunner().invoke(
        cli, ["check", "remarka", "--dir", str(ROOT / "config/regulations")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("passed, 0 failed")


def test_check_prints_a_readable_diff_and_fails(tmp_path: Path) -> None:
    folder = tmp_path / "regulations"
    shutil.copytree(ROOT / "config" / "regulations", folder)
    shutil.copytree(ROOT / "config" / "mappings", tmp_path / "mappings")  # scenarios' labels
    scenario = folder / "scenarios" / "remarka" / "refusal-without-reason.yaml"
    scenario.write_text(scenario.read_text().replace("10:30:00", "11:30:00"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "remarka", "--dir", str(folder)])
    assert result.exit_code == 1
    assert (
        "create_task.deadline: expected 2025-10-27T11:30:00+03:00, got 2025-10-27T10:30:00+03:00"
        in result.output
    )


def test_dry_run_shows_the_plan_without_a_crm(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", "http://127.0.0.1:9/rest/1/x/")
    monkeypatch.setenv("REMARKA_B24_APP_TOKEN", "t")
    event = {
        "config": str(TEST_CONFIG),
        "tenant": "remarka",
        "id": 42,
        "at": "2025-10-24T17:30:00+03:00",
        "record": {"stage": "C1:LOSE", "outcome": "lost", "responsible": "3", "title": "Кухня"},
        "previous": {"kind": "deal", "id": "42", "crm": "bitrix24", "stage": "meeting"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    result = CliRunner().invoke(cli, ["dry-run", str(path)])
    assert result.exit_code == 0, result.output
    assert "rule refusal-needs-reason: fired (missing: refusal_reason)" in result.output
    assert (
        "would create_task: task «Укажите причину отказа: Кухня» for user 3, due 2025-10-27T10:30"
        in result.output
    )


def test_journal_lists_events_with_decisions(journal_url: str, monkeypatch) -> None:
    journal = Journal(journal_url)
    event_id, _ = journal.record_event(
        tenant="remarka",
        crm="bitrix24",
        source="ONCRMDEALUPDATE",
        kind="deal",
        record_id="7",
        status="queued",
    )
    journal.add_decisions(
        event_id, [Decision("refusal-needs-reason", "fired", "missing: refusal_reason", "missing")]
    )
    journal.finish_event(event_id, "processed", "1 action(s) done")
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    result = CliRunner().invoke(cli, ["journal"])
    assert "remarka ONCRMDEALUPDATE deal 7: processed - 1 action(s) done" in result.output
    assert "rule refusal-needs-reason: fired (missing: refusal_reason)" in result.output
