"""No input makes `bridge` print a traceback: malformed packs, scenarios and dry-run files.

Hypothesis takes the project's own files and breaks them as an admin might (a value of the
wrong type, a key dropped, misspelt or added, a character typed into the YAML), then runs
`bridge validate`, `bridge check` and `bridge dry-run` on them. Every answer must be an exit
code of 0 or 1 (2 for a wrong command line) with sentences, never a traceback or the
"internal error" line that stands for a bug of the bridge.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.cli import cli
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from tests.bitrix24_env import ROOT, TEST_CONFIG

PACK = ROOT / "config" / "regulations" / "remarka.yaml"
SCENARIO = ROOT / "config" / "regulations" / "scenarios" / "remarka" / "estimate-approval.yaml"
EVENT = {
    "tenant": "remarka",
    "kind": "deal",
    "id": 42,
    "type": "record.updated",
    "at": "2025-10-24T17:30:00+03:00",
    "record": {"stage": "lost", "responsible": "ivanova", "title": "Кухня", "amount": 5},
    "previous": {"stage": "meeting"},
    "activity": {"type": "call", "direction": "incoming", "completed": True},
}
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "500 000", "5 рабочих дней", "C1:LOSE", "{{ record.x }", "lost"])
    | st.text(max_size=12)
    | st.dates().map(str)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
SETTINGS = settings(
    max_examples=int(os.environ.get("BRIDGE_TEST_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def paths(node: Any, at: tuple = ()) -> list[tuple]:
    """Every key path of a document (the document itself included)."""
    out = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*at, i))
    return out


def mutate(data: st.DataObject, doc: Any) -> Any:
    """The document with one to three mistakes an admin could make."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.sampled_from(paths(doc)))
        if not at:
            return data.draw(VALUES)
        parent = doc
        for part in at[:-1]:
            parent = parent[part]
        key, how = at[-1], data.draw(st.sampled_from(["value", "drop", "rename", "add"]))
        if how == "value":
            parent[key] = data.draw(VALUES)
        elif how == "drop":
            del parent[key]
        elif isinstance(parent, dict) and how == "rename":
            parent[str(key)[:-1] or "x"] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(VALUES)
    return doc


def typed(data: st.DataObject, text: str) -> str:
    """The YAML text, sometimes with a stray character typed into it."""
    if not data.draw(st.booleans()):
        return text
    where = data.draw(st.integers(0, len(text)))
    return (
        text[:where]
        + data.draw(st.sampled_from([":", "\t", "[", "{", "'", '"', "- ", "\n  "]))
        + text[where:]
    )


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=None)


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    out = result.output
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    assert result.exit_code in (0, 1, 2), (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return out


@pytest.fixture(scope="module")
def portal() -> Iterator[Bitrix24Sandbox]:
    """An empty portal: a dry run without a record reads it (and finds nothing, at once)."""
    sandbox = Bitrix24Sandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, portal: Bitrix24Sandbox) -> Path:
    """A config of one tenant whose pack and scenarios the test may break."""
    (tmp_path / "regulations" / "scenarios" / "remarka").mkdir(parents=True)
    config = yaml.safe_load(TEST_CONFIG.read_text(encoding="utf-8"))
    tenant = config["tenants"]["remarka"]
    tenant["mapping"] = str(ROOT / "config" / "mappings" / "remarka-bitrix24.yaml")
    tenant["regulations"] = ["regulations/remarka.yaml"]
    (tmp_path / "bridge.yaml").write_text(dump(config), encoding="utf-8")
    shutil.copy(PACK, tmp_path / "regulations" / "remarka.yaml")
    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", portal.webhook_url)
    monkeypatch.setenv("REMARKA_B24_APP_TOKEN", portal.application_token)
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", f"sqlite:///{tmp_path / 'journal.db'}")
    return tmp_path


@SETTINGS
@given(data=st.data())
def test_a_broken_pack_gets_sentences(workdir: Path, data: st.DataObject) -> None:
    pack = yaml.safe_load(PACK.read_text(encoding="utf-8"))
    (workdir / "regulations" / "remarka.yaml").write_text(typed(data, dump(mutate(data, pack))))
    run("validate", "--config", str(workdir / "bridge.yaml"))
    run("check", "remarka", "--dir", str(workdir / "regulations"))


@SETTINGS
@given(data=st.data())
def test_a_broken_scenario_gets_sentences(workdir: Path, data: st.DataObject) -> None:
    scenario = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    if data.draw(st.booleans()):
        scenario["tenant"] = "remarka"  # the tenant's words: aliases, stage ids
    target = workdir / "regulations" / "scenarios" / "remarka" / "broken.yaml"
    target.write_text(typed(data, dump(mutate(data, scenario))), encoding="utf-8")
    run(
        "check",
        "remarka",
        "--dir",
        str(workdir / "regulations"),
        "--config",
        str(workdir / "bridge.yaml"),
    )


@SETTINGS
@given(data=st.data())
def test_a_broken_dry_run_gets_sentences(workdir: Path, data: st.DataObject) -> None:
    event = mutate(data, EVENT)
    path = workdir / "event.json"
    if data.draw(st.booleans()):
        path.write_text(json.dumps(event, ensure_ascii=False, default=str), encoding="utf-8")
    else:
        path = workdir / "event.yaml"
        path.write_text(typed(data, dump(event)), encoding="utf-8")
    run("dry-run", str(path), "--config", str(workdir / "bridge.yaml"))
