"""Text of tasks and comments: Jinja2 in a sandbox, so a rule cannot reach Python internals."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

# One immutable environment: rendering is a pure function of template and context.
_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@lru_cache(maxsize=1024)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render a template string; plain text without ``{{`` passes through untouched."""
    if "{" not in source:
        return source
    return _compile(source).render(**context).strip()


def check(source: str) -> str | None:
    """The syntax error of a template, or None when it compiles."""
    try:
        _compile(source)
    except Exception as exc:  # noqa: BLE001 - any template error is reported to the admin
        return str(exc)
    return None
