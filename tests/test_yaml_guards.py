"""Hostile YAML: unknown tags, depth bombs and alias bombs are refused by `bridge validate` with
file:line and the fix, never read silently, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import yamlfile
from tests.test_validate import config_dir, line_of, replace, validate

__all__ = ["config_dir"]  # the fixture, used by name

ANCHOR = "          responsible: responsible\n          deadline: 2 working hours\n"
"""Two keys of the first rule's task in the example pack; a test swaps in its own YAML."""


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/object/apply:os.system [echo pwned]", "!!python/object/apply:os.system"),
        ("!!python/object:builtins.dict {a: 1}", "!!python/object:builtins.dict"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!secret petrov", "!secret"),
        ("!include [other.yaml]", "!include"),
        ("!!binary aGVsbG8=", "!!binary"),
    ],
)
def test_an_unknown_tag_is_refused_with_file_line_and_the_fix(
    config_dir: Path, value: str, tag: str
) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, ANCHOR, f"          responsible: {value}\n          deadline: 2 working hours\n")
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, value)
    assert f"{pack}:{line}: not valid YAML: the tag {tag} is not allowed" in out
    assert f"remove {tag}" in out
    assert "Traceback" not in out


def test_plain_explicit_tags_still_read(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    tagged = "          responsible: !!str responsible\n          deadline: 2 working hours\n"
    replace(pack, ANCHOR, tagged)
    code, out = validate(config_dir)
    assert code == 0, out


@pytest.mark.parametrize("flow", [True, False], ids=["[[[...]]]", "indented"])
def test_a_depth_bomb_is_refused_at_the_line_the_limit_is_passed(
    config_dir: Path, flow: bool
) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    levels = 5000 if flow else 40
    bomb = (
        "[" * levels + "]" * levels
        if flow
        else "\n" + "".join(" " * (12 + 2 * i) + f"- k{i}:\n" for i in range(levels))
    )
    replace(pack, ANCHOR, f"          responsible: responsible\n          checklist: {bomb}\n")
    code, out = validate(config_dir)
    assert code == 1
    # the pack's own levels: file, rules, rule, then, item, create_task (6); the list at the
    # line of `- kN:` is level 7 + 2N (the list, then the mapping `kN:` in it)
    deep = line_of(pack, "checklist" if flow else f"- k{(yamlfile.MAX_DEPTH - 6) // 2}:")
    assert (
        f"{pack}:{deep}: not valid YAML: lists and mappings nested more than "
        f"{yamlfile.MAX_DEPTH} deep; no setting needs that many levels: flatten it"
    ) in out
    assert "RecursionError" not in out and "Traceback" not in out


def test_an_alias_inside_its_own_anchor_is_refused(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    loop = "          responsible: responsible\n          checklist: &loop [a, *loop]\n"
    replace(pack, ANCHOR, loop)
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "&loop")
    assert f"{pack}:{line}: not valid YAML: an alias (*name) inside the very anchor" in out
    assert "write the value out" in out
    assert "RecursionError" not in out


def test_a_billion_laughs_is_refused_quickly(config_dir: Path) -> None:
    config = config_dir / "bridge.yaml"
    lol = "".join(
        f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10) if i else ', '.join(['lol'] * 10)}]\n"
        for i in range(9)
    )
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("version: 1\n", f"version: 1\n{lol}", 1), encoding="utf-8")
    code, out = validate(config_dir)
    assert code == 1
    assert (
        f"not valid YAML: the file expands to more than {yamlfile.MAX_VALUES:,} values, "
        "aliases (*name) counted each time they repeat their anchor"
    ) in out
    line = int(out.split(f"{config}:")[1].split(":")[0])
    assert line in range(line_of(config, "lol1:"), line_of(config, "lol8:") + 1)


def test_a_merge_key_says_it_is_not_supported(config_dir: Path) -> None:
    config = config_dir / "bridge.yaml"
    replace(config, "    crm: bitrix24\n", "    <<: {crm: bitrix24}\n")
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(config, "<<:")
    assert f"{config}:{line}: not valid YAML: the merge key << is not supported" in out
