"""Scenarios in the tenant's words: its calendar and roles, its aliases and stage ids; the
bridge's own writes reach the record; a step's mistake names its line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bridge import config
from bridge.cli import cli
from bridge.regulations.pack import load_pack
from bridge.scenarios import run_file
from tests.bitrix24_env import ROOT, TEST_CONFIG

PACK = ROOT / "config" / "regulations" / "remarka.yaml"


def scenario(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    pack, _ = load_pack(PACK)
    return run_file(pack, path, lambda: config.load(TEST_CONFIG)).problems


def test_a_record_may_name_any_canonical_field_beside_its_own_keys(tmp_path: Path) -> None:
    text = """scenario: x
steps:
  - at: 2025-10-24T17:30:00+03:00
    record: {kind: deal, id: 1, stage: lost, contact_id: 5, title: Кухня}
    expect:
      actions: [{create_task: {title: "Укажите причину отказа: Кухня"}}]
"""
    assert scenario(tmp_path, text) == []


def test_with_its_tenant_a_scenario_speaks_aliases_and_the_portals_stage_ids(
    tmp_path: Path,
) -> None:
    text = """scenario: x
tenant: remarka
previous: {kind: deal, id: 42, stage: "C1:MEETING", responsible: ivanova, title: Кухня}
steps:
  - at: 2025-10-24T11:00:00+03:00
    change: {stage: "C1:PRESENTATION"}
    expect:
      actions:
        - create_task: {title: "Позвонить клиенту по КП: Кухня", responsible: ivanova}
        - create_task: {responsible: ivanova}
"""
    assert scenario(tmp_path, text) == []


def test_a_stage_id_the_mapping_does_not_name_is_refused_at_its_line(tmp_path: Path) -> None:
    text = """scenario: x
tenant: remarka
previous: {kind: deal, id: 42, stage: meeting, responsible: ivanova}
steps:
  - at: 2025-10-24T11:00:00+03:00
    change:
      stage: "C3:PREPARATION"
"""
    [problem] = scenario(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 's.yaml'}:7: step 1: change: unknown stage of a deal")
    assert "known: contract, crew_booked, estimate, first_contact, lost, meeting" in problem


def test_an_unknown_tenant_and_a_timer_never_set_are_sentences(tmp_path: Path) -> None:
    (tmp_path / "regulations" / "scenarios" / "remarka").mkdir(parents=True)
    (tmp_path / "regulations" / "remarka.yaml").write_text(PACK.read_text("utf-8"), "utf-8")
    folder = tmp_path / "regulations" / "scenarios" / "remarka"
    (folder / "a.yaml").write_text(
        "scenario: a\nprevious: {stage: meeting}\nsteps:\n"
        "  - {at: 2025-10-24T11:00:00+03:00, event: timer.due, timer: nope}\n",
        encoding="utf-8",
    )
    args = [
        "check",
        "remarka",
        "--dir",
        str(tmp_path / "regulations"),
        "--config",
        str(TEST_CONFIG),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "a.yaml:4: step 1: timer.due needs `timer:` naming a rule whose timer an earlier" in (
        result.output
    )
    (folder / "b.yaml").write_text(
        "scenario: b\ntenant: remarks\nsteps:\n  - {at: 2025-10-24T11:00:00+03:00}\n", "utf-8"
    )
    result = CliRunner().invoke(cli, args)
    assert "b.yaml:2: tenant: unknown tenant 'remarks' (did you mean 'remarka'?)" in result.output
