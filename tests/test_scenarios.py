"""Every scenario file of every pack runs in the test suite (`bridge check` does the same)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.regulations.pack import load_pack
from bridge.scenarios import run_file, scenario_files
from tests.bitrix24_env import ROOT

PACKS = sorted((ROOT / "config" / "regulations").glob("*.yaml"))
CASES = [(pack, scenario) for pack in PACKS for scenario in scenario_files(pack)]


@pytest.mark.parametrize(
    ("pack_path", "scenario"), CASES, ids=[f"{p.stem}/{s.stem}" for p, s in CASES]
)
def test_scenario(pack_path: Path, scenario: Path) -> None:
    pack, _ = load_pack(pack_path)
    result = run_file(pack, scenario)
    assert result.ok, "\n".join(result.problems)


def test_every_pack_has_scenarios() -> None:
    assert PACKS
    assert all(scenario_files(pack) for pack in PACKS), [
        p.stem for p in PACKS if not scenario_files(p)
    ]
