"""Every rule marked auto in the five documents is encoded in a pack and proved by a scenario,
and docs/regulations.md says so (regenerate with `bridge coverage --write docs/regulations.md`)."""

from __future__ import annotations

from bridge.coverage import AUTO_RULES, coverage, markdown
from tests.bitrix24_env import ROOT

FOLDER = ROOT / "config" / "regulations"


def test_every_auto_rule_has_a_pack_rule_and_a_scenario() -> None:
    table = coverage(FOLDER)
    uncovered = [r for r in AUTO_RULES if not table.get(r, {}).get("rules")]
    unproved = [r for r in AUTO_RULES if not table.get(r, {}).get("scenarios")]
    assert (uncovered, unproved) == ([], [])


def test_the_documented_table_is_current() -> None:
    assert (ROOT / "docs" / "regulations.md").read_text(encoding="utf-8") == markdown(FOLDER)
