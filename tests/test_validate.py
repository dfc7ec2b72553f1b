"""`bridge validate`: a bad config names file, line, key and the fix; secrets stay out of YAML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
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
