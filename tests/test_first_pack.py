"""docs/first-pack.md, followed to the letter: its files written, its commands run, what it
shows printed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from tests import tutorial
from tests.bitrix24_env import ROOT

DOC = (ROOT / "docs" / "first-pack.md").read_text(encoding="utf-8")


def test_the_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    tutorial.write(DOC, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    commands = tutorial.commands(DOC)
    assert [c.args[:2] for c in commands] == [
        ["bridge", "validate"],
        ["bridge", "check"],
        ["bridge", "dry-run"],
        ["bridge", "try"],
    ]
    for command in commands:
        result = CliRunner().invoke(cli, command.args[1:])
        assert result.exit_code == 0, f"{' '.join(command.args)}:\n{result.output}"
        for line in command.shown:
            if line.strip() and "…" not in line:
                assert line.rstrip() in result.output, (
                    f"{command.args[:3]}: {line!r} not in:\n{result.output}"
                )


def test_the_mistake_the_tutorial_quotes_is_the_one_line_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    tutorial.write(DOC, tmp_path)
    pack = tmp_path / "config" / "regulations" / "heating.yaml"
    pack.write_text(
        pack.read_text(encoding="utf-8").replace("gt: 500000", 'gt: "500 000"'), "utf-8"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    quoted = DOC.split("you would\nread `")[1].split("`, and nothing else")[0].replace("\n", " ")
    assert result.output.splitlines() == [quoted, "1 problem(s) found"]
