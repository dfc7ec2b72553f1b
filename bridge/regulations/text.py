"""Text of tasks and comments: Jinja2 in the bridge's sandbox (:mod:`bridge.templating`), so a
rule can neither reach Python internals, change the record, nor build an endless text."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template

from bridge import templating

# One environment for every rule's text: rendering is a pure function of template and context.
_ENV = templating.environment()

RULE_VARIABLES = frozenset(
    {
        "record",
        "previous",
        "missing",
        "missing_fields",
        "label",
        "rule",
        "lookups",
        "constants",
        "activity",
        "now",
    }
)
"""The names a rule's texts may use (the engine's template context has exactly these)."""


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string; plain text without ``{{`` passes through untouched."""
    if "{" not in source:
        return source
    return templating.render(_compile(source), context).strip()


def unknown_names(source: str, names: templating.Names) -> list[tuple[int, str]]:
    """A rule text's syntax error, or the names it uses that its context lacks, by line
    (:func:`bridge.templating.unknown_names`); none for plain text."""
    if "{" not in source:
        return []
    return templating.unknown_names(_ENV, source, names)
