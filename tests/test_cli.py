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
        "record": {"stage": "lost", "responsible": "ivanova", "title": "Кухня"},
        "previous": {"stage": "meeting"},  # kind, id and crm are the event's
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


def dry_run(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "event.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["dry-run", str(path), "--config", str(TEST_CONFIG), *args])
    return result.exit_code, result.output


def test_dry_run_translates_a_stage_id_of_the_mapping(tmp_path: Path) -> None:
    code, out = dry_run(
        tmp_path,
        "tenant: remarka\nat: 2025-10-24T11:00:00+03:00\n"
        "record: {stage: 'C1:PRESENTATION', responsible: ivanova, title: Кухня}\n",
    )
    assert code == 0, out
    assert "rule quote-follow-up-call: fired" in out
    assert "would create_task: task «Позвонить клиенту по КП: Кухня» for user 3" in out


def test_dry_run_refuses_a_stage_id_the_mapping_does_not_name(tmp_path: Path) -> None:
    code, out = dry_run(
        tmp_path, "tenant: remarka\nrecord:\n  title: Кухня\n  stage: 'C3:PREPARATION'\n"
    )
    assert code == 1
    assert "event.yaml:4: record.stage: unknown stage of a deal 'C3:PREPARATION'" in out
    assert "known: contract, crew_booked, estimate, first_contact, lost, meeting" in out
    assert "Traceback" not in out


def test_dry_run_names_the_tenants_when_none_is_given(tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    text = TEST_CONFIG.read_text(encoding="utf-8").replace("../../", f"{ROOT}/")
    two.write_text(text + text.split("tenants:\n")[1].replace("remarka:", "other:"), "utf-8")
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"record": {"stage": "lost"}}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["dry-run", str(path), "--config", str(two)])
    assert result.exit_code == 1
    assert "say which tenant (`tenant:` or --tenant); the config's tenants: remarka, other" in (
        result.output
    )


def test_dry_run_by_id_says_which_secret_is_missing(monkeypatch) -> None:
    monkeypatch.delenv("REMARKA_B24_WEBHOOK_URL", raising=False)
    result = CliRunner().invoke(cli, ["dry-run", "--id", "42", "--config", str(TEST_CONFIG)])
    assert result.exit_code == 1
    assert "secret REMARKA_B24_WEBHOOK_URL is not set: export REMARKA_B24_WEBHOOK_URL=..." in (
        result.output
    )


def test_dry_run_renders_the_e_mail(tmp_path: Path) -> None:
    config = ROOT / "config" / "bridge.yaml"
    result = CliRunner().invoke(
        cli,
        ["dry-run", "--config", str(config), str(_event(tmp_path, "fireworks", NO_ANSWER))],
    )
    assert result.exit_code == 0, result.output
    assert "would send_email: e-mail «no_answer» to client" in result.output
    assert "e-mail to client@example.invalid" in result.output
    assert "  Subject: Не смогли до вас дозвониться — Заказ 101" in result.output
    assert "  | Здравствуйте, [client's name]!" in result.output  # the CRM's, when it runs


NO_ANSWER = {
    "at": "2025-10-31T11:00:00+03:00",
    "record": {
        "title": "Заказ 101",
        "stage": "in_work",
        "call_result": "no_answer",
        "preferred_channel": "email",
        "client_blocked_since": "2025-10-01",
    },
}


def _event(tmp_path: Path, tenant: str, data: dict) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"tenant": tenant, **data}), encoding="utf-8")
    return path


def test_journal_masks_phones_and_emails_even_in_rows_kept_unmasked(
    journal_url: str, monkeypatch
) -> None:
    journal = Journal(journal_url)
    event_id, _ = journal.record_event(
        tenant="remarka", crm="bitrix24", source="ONCRMDEALUPDATE", status="queued"
    )
    with journal.engine.begin() as conn:  # as a bridge that did not mask its journal wrote it
        reason = "client +7 912 345-67-89, ivan.petrov@mail.ru"
        conn.exec_driver_sql("UPDATE events SET reason = ? WHERE id = ?", (reason, event_id))
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    result = CliRunner().invoke(cli, ["journal"])
    assert "client +7********89, i***@mail.ru" in result.output
    assert "345-67" not in result.output and "ivan.petrov" not in result.output
