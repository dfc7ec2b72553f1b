"""`bridge schema`: the JSON Schemas an editor checks the YAML files with as the admin types.

Every file the project ships passes its schema; the mistakes an editor must underline fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from bridge.cli import cli
from tests.bitrix24_env import ROOT

CONFIG = ROOT / "config"
FILES = {
    "pack": sorted((CONFIG / "regulations").glob("*.yaml")),
    "scenario": sorted((CONFIG / "regulations" / "scenarios").glob("*/*.yaml")),
    "mapping": sorted((CONFIG / "mappings").glob("*.yaml")),
    "config": [CONFIG / "bridge.yaml", ROOT / "tests" / "fixtures" / "amocrm.yaml"],
}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, jsonschema.Validator]:
    folder = tmp_path_factory.mktemp("schemas")
    result = CliRunner().invoke(cli, ["schema", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.schema.json",
        "dry-run.schema.json",
        "mapping.schema.json",
        "pack.schema.json",
        "scenario.schema.json",
    ]
    return {
        path.name.removesuffix(".schema.json"): jsonschema.Draft202012Validator(
            json.loads(path.read_text(encoding="utf-8"))
        )
        for path in folder.iterdir()
    }


def load(path: Path) -> object:
    # as JSON sees it: dates and times are strings there
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))


@pytest.mark.parametrize("kind", FILES)
def test_every_shipped_file_passes_its_schema(kind: str, schemas: dict) -> None:
    assert FILES[kind]
    for path in FILES[kind]:
        errors = list(schemas[kind].iter_errors(load(path)))
        assert not errors, f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}"


def problems(schemas: dict, kind: str, text: str) -> list[str]:
    data = json.loads(json.dumps(yaml.safe_load(text), default=str))
    return [e.message for e in schemas[kind].iter_errors(data)]


def test_the_editor_underlines_a_misspelt_key_and_a_wrong_type(schemas: dict) -> None:
    pack = "pack: p\nrules:\n  - id: r\n    when: {kind: deal, stage_too: lost}\n    then: []\n"
    assert any("'stage_too' was unexpected" in p for p in problems(schemas, "pack", pack))
    amount = "pack: p\nrules:\n  - id: r\n    when: {if: {field: amount, gt: '500 000'}}\n"
    amount += "    then: [{add_comment: {text: x}}]\n"
    assert problems(schemas, "pack", amount)
    good = "pack: p\nrules:\n  - id: r\n    when: {kind: deal, stage_to: lost}\n"
    good += "    then: [{create_task: {title: x, priority: high}}]\n"
    assert problems(schemas, "pack", good) == []


def test_a_tenants_connection_is_checked_against_its_crm(schemas: dict) -> None:
    tenant = "tenants:\n  t:\n    crm: bitrix24\n    regulations: [p.yaml]\n    connection:\n"
    amo_keys = tenant + "      base_url: https://x.amocrm.ru\n      account_id: 1\n"
    assert problems(schemas, "config", amo_keys)  # an amoCRM block under a Bitrix24 tenant
    b24 = tenant + "      webhook_url_env: W\n      application_token_env: T\n"
    assert problems(schemas, "config", b24) == []
    unknown = b24.replace("crm: bitrix24", "crm: bitrx24")
    assert any("is not one of" in p for p in problems(schemas, "config", unknown))


def test_a_mapping_section_must_be_a_record_kind(schemas: dict) -> None:
    assert problems(schemas, "mapping", "deal:\n  stages: {new: ['C1:NEW']}\n") == []
    assert problems(schemas, "mapping", "deals:\n  stages: {new: ['C1:NEW']}\n")


def test_one_schema_prints_and_a_wrong_name_is_a_sentence() -> None:
    result = CliRunner().invoke(cli, ["schema", "pack"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Regulation pack of the CRM bridge"
    result = CliRunner().invoke(cli, ["schema", "packs"])
    assert result.exit_code == 2
    assert "say which schema: pack, scenario, mapping, config, dry-run" in result.output
