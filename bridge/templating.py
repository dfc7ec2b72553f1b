"""The one Jinja2 environment every template of the bridge runs in: rule texts and e-mails.

A template is written by an admin, not by us, and runs inside the worker: it must not reach
Python internals, change the record it is given, or make the worker build gigabytes of text.
So every template runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no
``''.__class__``, no ``dict.update`` or ``list.append``), with :class:`jinja2.StrictUndefined`
(a misspelt name is an error, never a blank), and with a size limit: an expression that would
build a text or a list longer than :data:`MAX_OUTPUT` characters (``'a' * 10**7``,
``'x'|center(10**8)``) is refused before it is built, and a template whose whole output
passes the limit (a long loop) is stopped there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bridge.masking import redact

MAX_OUTPUT = 100_000
"""Characters a template may produce (a task's text, an e-mail's body), and the longest text
or list an expression inside it may build."""

_MAX_POWER_BITS = 4096
"""``**`` may yield a number of at most this many bits: enough for any amount, not 10**10**9."""


class TemplateTooLarge(SecurityError):
    """A template would produce more than :data:`MAX_OUTPUT` characters (a template error like
    the others: the action that renders it fails, alone)."""


RENDER_ERRORS: tuple[type[Exception], ...] = (
    TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
)
"""What rendering a template with a record can raise when the template does not fit the data
(``{{ record.fields.amount }}`` where there is none, ``{{ record.amount / 0 }}``, ``{{ none.x
}}``, a refused call): the template's fault, so permanent, and only for the action it belongs
to."""


def failure(exc: Exception) -> str:
    """Why a template could not be rendered, in words for the journal (data masked)."""
    if isinstance(exc, TemplateSyntaxError):
        why = f"template syntax error at line {exc.lineno}: {exc.message}"
    elif isinstance(exc, UndefinedError):
        why = (
            f"template error: {exc.message}; the template names something this record does not "
            "have (`bridge validate` lists the names a template may use)"
        )
    elif isinstance(exc, SecurityError):
        why = f"template refused: {exc}"
    elif isinstance(exc, TemplateError):
        why = f"template error: {exc}"
    else:
        why = f"template error: {type(exc).__name__}: {exc}"
    return redact(why)


def _too_large(what: str) -> TemplateTooLarge:
    return TemplateTooLarge(
        f"{what} would exceed the template size limit of {MAX_OUTPUT:,} characters; "
        "a task, comment or e-mail never needs that much: shorten the template"
    )


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a size limit on ``*``, ``**`` and on padding to a width."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        """``*`` and ``**`` with their results' size checked before they are computed."""
        if operator_ == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
            return operator.mul(left, right)
        if operator_ == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        return super().call_binop(context, operator_, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """A call, refused when it pads text to a width past the limit (``ljust``, ``center``,
        ``zfill``...)."""
        if getattr(__obj, "__self__", None).__class__ is str:
            _check_widths(f"{__obj.__name__}()", args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` (the sandbox's own safe version), refusing a width past the limit."""
        fmt = super().wrap_str_format(value)
        if fmt is None:
            return None

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_widths("format()", args, kwargs)
            return fmt(*args, **kwargs)

        return checked


def _check_repeat(sequence: Any, times: Any) -> None:
    sized = isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
    if sized and len(sequence) * times > MAX_OUTPUT:
        raise _too_large(f"repeating a {type(sequence).__name__} {times:,} times")


def _check_power(base: Any, exponent: Any) -> None:
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if whole and max(abs(base), 1).bit_length() * exponent > _MAX_POWER_BITS:
        raise TemplateTooLarge(
            f"{base} ** {exponent} is too large a number for a template; "
            f"a template may compute numbers of up to {_MAX_POWER_BITS} bits"
        )


def _check_widths(what: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_OUTPUT:
            raise _too_large(f"{what} with a width of {value:,}")


def _bounded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses a width argument past the limit (``center``, ``indent``...)."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_widths(f"the {name} filter", args[1:], kwargs)
        return fn(*args, **kwargs)

    checked.__name__ = getattr(fn, "__name__", name)
    return checked


_WIDTH_FILTERS = ("center", "indent", "format")
"""Jinja's filters that pad text to a width (each takes the value first, no environment)."""


def environment(
    *,
    loader: BaseLoader | None = None,
    autoescape: bool | Callable[[str | None], bool] = False,
    keep_trailing_newline: bool = False,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> Sandbox:
    """A new environment for the bridge's templates: sandboxed, immutable, strict, limited.

    Args:
        loader: where named templates come from (e-mail folders); none for template strings.
        autoescape: HTML escaping (on for ``.html`` e-mails only).
        keep_trailing_newline: keep a template's last newline (e-mail bodies).
        filters: extra filters (``money``).
    """
    env = Sandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=keep_trailing_newline,
    )
    for name in _WIDTH_FILTERS:
        env.filters[name] = _bounded(name, env.filters[name])
    env.filters.update(filters or {})
    return env


def render(template: Template, context: Mapping[str, Any]) -> str:
    """Render a compiled template, stopping once its output passes :data:`MAX_OUTPUT`.

    Raises:
        TemplateTooLarge: the output would be longer than the limit.
        jinja2.TemplateError: any other template error (an unknown name, a refused call).
    """
    out: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _too_large("the template's text")
        out.append(chunk)
    return "".join(out)
