"""Every pack's scenarios, played end to end on every CRM the pack has a mapping for.

A pack is written once; the differences between CRMs live in the mappings (issue 11, "One
pack, every CRM"). Each scenario file that ``bridge check`` runs through the pure engine is
replayed here on the sandbox of each CRM: the pack's own tenant's (config/bridge.yaml) and each
``config/mappings/<pack>-<crm>.yaml`` no other tenant runs on. How: tests/pack_player.py. The
CRMs' wire formats are their sandboxes' (Bitrix24: D:api-reference/events/index.md and the
crm.* methods; amoCRM: https://www.amocrm.ru/developers/content/crm_platform/webhooks-format
and API v4; 1C: the CommerceML exchange, bridge/crms/onec/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import yamlfile
from bridge.scenarios import Scenario, scenario_files
from tests.pack_player import ROOT, Player, Unplayable, pack_crms, unplayable

PACKS = sorted(p.stem for p in (ROOT / "config" / "regulations").glob("*.yaml"))
CASES = [
    (pack, crm, path)
    for pack in PACKS
    for crm in pack_crms(pack)
    for path in scenario_files(ROOT / "config" / "regulations" / f"{pack}.yaml")
]


@pytest.mark.parametrize(
    ("pack", "crm", "path"), CASES, ids=[f"{p}-{c}/{s.stem}" for p, c, s in CASES]
)
def test_pack_scenario_runs_on_the_crm(
    pack: str,
    crm: str,
    path: Path,
    redis_url: str,
    journal_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario: Scenario = yamlfile.validate(Scenario, yamlfile.load(path))
    reason = unplayable(scenario)
    if reason:
        pytest.skip(reason)
    try:
        player = Player(pack, crm, scenario, (journal_url, redis_url), tmp_path, monkeypatch)
    except Unplayable as exc:
        pytest.skip(str(exc))
    try:
        problems = player.play()
    except Unplayable as exc:
        pytest.skip(str(exc))
    finally:
        player.close()
    assert not problems, f"{path} on {crm}:\n" + "\n".join(problems)


def test_every_pack_runs_on_its_own_crm_and_each_mapped_one() -> None:
    crms = {pack: pack_crms(pack) for pack in PACKS}
    assert crms["remarka"] == ["bitrix24", "amocrm"]
    assert crms["autoparts"] == ["bitrix24", "amocrm"]
    assert crms["fireworks-1c"] == ["onec"]
    assert crms["fireworks"] == ["bitrix24"]  # fireworks-onec.yaml is fireworks-1c's
