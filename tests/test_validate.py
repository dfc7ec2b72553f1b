"""`bridge validate`: a bad config names file, line, key and the fix; secrets stay out of YAML."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import crms
from bridge.cli import cli
from bridge.crms import RecordKind
from bridge.crms.bitrix24 import ACTIONS, Bitrix24
from tests.bitrix24_env import ROOT


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the example configuration to break."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config"


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", "--config", str(path / "bridge.yaml")])
    return result.exit_code, result.output


def replace(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_example_configuration_is_valid(config_dir: Path) -> None:
    code, out = validate(config_dir)
    assert code == 0, out
    assert "configuration is valid" in out


def test_misspelled_action_names_file_line_and_fix(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, "      - create_task:", "      - create_taks:")
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "create_taks")
    assert f"{pack}:{line}: rules[0].then[0]: unknown action 'create_taks'" in out
    assert "did you mean 'create_task'?" in out


def test_unknown_field_in_require_lists_the_known_ones(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, "require: [refusal_reason]", "require: [refusal_reasn]")
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "refusal_reasn")
    assert f"{pack}:{line}: rules[0].require[0]: unknown field 'refusal_reasn'" in out
    assert "(did you mean 'refusal_reason'?)" in out


def test_bad_deadline_lists_the_accepted_forms(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, "deadline: 2 working hours", "deadline: two hours")
    code, out = validate(config_dir)
    assert code == 1
    assert f"{pack}:{line_of(pack, 'two hours')}:" in out
    assert "'<N> working hours'" in out


def test_unknown_key_in_a_tenant_suggests_the_right_one(config_dir: Path) -> None:
    replace(config_dir / "bridge.yaml", "    timezone:", "    timezon:")
    code, out = validate(config_dir)
    assert code == 1
    assert "tenants.remarka.timezon: unknown key 'timezon' (did you mean 'timezone'?)" in out


def test_a_secret_written_into_yaml_is_refused(config_dir: Path) -> None:
    replace(
        config_dir / "bridge.yaml",
        "webhook_url_env: REMARKA_B24_WEBHOOK_URL",
        "webhook_url: https://example.bitrix24.ru/rest/1/secret/",
    )
    code, out = validate(config_dir)
    assert code == 1
    assert "tenants.remarka.connection.webhook_url: unknown key" in out
    assert "webhook_url_env" in out


def test_a_kind_the_crm_does_not_offer_is_named_with_file_and_line(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    mapping = config_dir / "mappings" / "remarka-bitrix24.yaml"
    replace(pack, "kind: deal", "kind: order")
    with mapping.open("a", encoding="utf-8") as out:
        out.write("order:\n  fields: {comment: COMMENTS}\n")
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "kind: order")
    assert f"{pack}:{line}: rules[" in out
    assert "unknown record kind of Bitrix24 'order'; known: deal, lead" in out
    line = line_of(mapping, "order:")
    assert f"{mapping}:{line}: order: Bitrix24 offers no record kind 'order'" in out


class LiteBitrix24(Bitrix24):
    """A Bitrix24 whose deals cannot be moved by the bridge (as a CRM declaring less would)."""

    name = "bitrix24-lite"
    title = "Bitrix24 Lite"
    record_kinds = (
        RecordKind("deal", "сделка", ACTIONS - {"move_stage"}),
        RecordKind("lead", "лид", ACTIONS),
    )

    @classmethod
    def mapping_path(cls) -> Path:
        return Bitrix24.mapping_path()


@pytest.fixture
def lite() -> Iterator[None]:
    crms.register(LiteBitrix24)
    yield
    crms.unregister(LiteBitrix24.name)


def test_an_action_the_crm_cannot_execute_is_refused(config_dir: Path, lite: None) -> None:
    replace(config_dir / "bridge.yaml", "crm: bitrix24", "crm: bitrix24-lite")
    pack = config_dir / "regulations" / "remarka.yaml"
    with pack.open("a", encoding="utf-8") as out:
        out.write(
            "  - id: back-to-estimate\n"
            "    when: {kind: deal, event: record.updated, in_stage: quote_presented}\n"
            "    then:\n"
            "      - move_stage: {stage: estimate}\n"
        )
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "move_stage: {stage: estimate}")
    assert f"{pack}:{line}: " in out
    assert "Bitrix24 Lite cannot execute move_stage on a deal (it can: add_comment," in out


def test_an_unknown_crm_lists_the_registered_ones(config_dir: Path) -> None:
    replace(config_dir / "bridge.yaml", "crm: bitrix24", "crm: bitrix")
    code, out = validate(config_dir)
    assert code == 1
    assert "unknown CRM 'bitrix' (did you mean 'bitrix24'?); one of amocrm, bitrix24" in out


def test_a_required_field_without_a_label_is_refused(config_dir: Path) -> None:
    mapping = config_dir / "mappings" / "remarka-bitrix24.yaml"
    replace(
        mapping,
        'next_contact_goal: {code: UF_CRM_1700000003, label: "Цель следующего контакта"}',
        "next_contact_goal: UF_CRM_1700000003",
    )
    code, out = validate(config_dir)
    assert code == 1
    assert "field 'next_contact_goal' of deal has no label: managers would read" in out


def test_constants_must_be_declared_and_set(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, "sweep_every: 60 minutes", "sweep_every: 60 minutes\nconstants: {season: null}")
    replace(
        pack,
        "require: [refusal_reason]",
        "require: [refusal_reason]\n    within: 1 hour\n"
        "    unless: {today_between: [{constant: seasn}, '12-31']}",
    )
    code, out = validate(config_dir)
    assert code == 1
    assert "unknown constant 'seasn' (did you mean 'season'?)" in out
    assert "constant 'season' has no default: set it in the tenant's `constants:`" in out
