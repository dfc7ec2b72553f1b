"""Text of tasks and comments: Jinja2 in the bridge's sandbox (:mod:`bridge.templating`), so a
rule can neither reach Python internals, change the record, nor build an endless text."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template

from bridge import templating

# One environment for every rule's text: rendering is a pure function of template and context.
_ENV = templating.environment()


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string; plain text without ``{{`` passes through untouched."""
    if "{" not in source:
        return source
    return templating.render(_compile(source), context).strip()


def check(source: str) -> str | None:
    """The syntax error of a template, or None when it compiles."""
    try:
        _compile(source)
    except Exception as exc:  # noqa: BLE001 - any template error is reported to the admin
        return str(exc)
    return None
