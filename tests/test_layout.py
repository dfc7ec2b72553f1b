"""The layout is a contract: one CRM is one folder, and nothing outside it names the CRM.

import-linter (run by scripts/test) checks the layers; this checks what it cannot: that code
outside ``bridge/crms/<name>/`` never says a CRM's name, in an identifier or a string, so that
adding a CRM means adding a folder. Docstrings and comments may name CRMs as examples.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from bridge import crms
from tests.bitrix24_env import ROOT

PACKAGE = ROOT / "bridge"


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that stand alone as statements (docstrings of modules,
    classes, functions and attributes)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _words(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every identifier and non-docstring string constant of a module."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield line, node.value
        elif isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield line, node.name
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield line, getattr(node, "module", None) or ""
            yield from ((line, alias.name) for alias in node.names)


def _core_modules() -> list[Path]:
    folders = [PACKAGE / "crms" / name for name in crms.names()]
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(folder in path.parents for folder in folders)
    ]


def names_of_crms(path: Path) -> list[str]:
    """``file:line: word`` for each word of a module that names a registered CRM."""
    pattern = re.compile("|".join(re.escape(name) for name in crms.names()), re.IGNORECASE)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.name}:{line}: {word!r}" for line, word in _words(tree) if pattern.search(word)]


def test_no_module_outside_a_crm_folder_names_a_crm() -> None:
    found = [f"{path.parent}/{hit}" for path in _core_modules() for hit in names_of_crms(path)]
    assert found == [], "move CRM-specific code into its folder:\n" + "\n".join(found)


def test_the_check_sees_a_crm_named_in_code(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        '"""Bitrix24 may be named here."""\n\nif crm == "amocrm":  # and here\n    pass\n',
        encoding="utf-8",
    )
    assert names_of_crms(module) == ["module.py:3: 'amocrm'"]


def test_every_crm_folder_is_one_registered_crm() -> None:
    folders = {p.parent.name for p in (PACKAGE / "crms").glob("*/__init__.py")}
    assert folders == set(crms.names())
    for name in crms.names():
        crm = crms.get(name)
        assert crm.mapping_path() == PACKAGE / "crms" / name / "mapping.yaml"
        assert crm.mapping_path().is_file()
        assert crm.connector_class().crm is crm
        assert crm.blueprint().name
