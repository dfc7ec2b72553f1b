"""The one Jinja2 environment every template of the bridge runs in: rule texts and e-mails.

A template is written by an admin, not by us, and runs inside the worker: it must not reach
Python internals, change the record it is given, or make the worker build gigabytes of text.
So every template runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no
``''.__class__``, no ``dict.update`` or ``list.append``), with :class:`jinja2.StrictUndefined`
(a misspelt name is an error, never a blank), and with a size limit: an expression that would
build a text or a list longer than :data:`MAX_OUTPUT` characters (``'a' * 10**7``,
``'x'|center(10**8)``) is refused before it is built, and a template whose whole output
passes the limit (a long loop) is stopped there.

:func:`unknown_names` reads a template before it runs (``bridge validate``): every name it
uses that its context will not hold, a field the tenant's mapping lacks above all.
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from bridge.masking import redact
from bridge.models import STANDARD_FIELDS, Record

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
    RecursionError,  # a macro that calls itself
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
        if isinstance(getattr(__obj, "__self__", None), str):
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


# ---------------------------------------------------------------------------- checking names


@dataclass(frozen=True)
class Names:
    """What a template may name, for :func:`unknown_names`.

    Attributes:
        variables: the context's names (``record``, ``missing``...).
        fields: the custom fields ``record.fields`` holds (the mapping's, for the kinds the
            template may meet); None: not known, not checked.
        kinds: those kinds, for messages (``deal``, ``deal, lead``).
        lookups: a rule's look-ups -> the custom fields of the records each finds.
        constants: the constants a rule may read (``constants.NAME``).
    """

    variables: frozenset[str]
    fields: frozenset[str] | None
    kinds: str = ""
    lookups: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    constants: frozenset[str] = frozenset()


RECORD_NAMES = frozenset(f.name for f in dataclasses.fields(Record)) | {"ref", "in_stage", "value"}
"""What a template may read of a record (``record``, ``previous``, a look-up's finds)."""

_FIELD_NAMES = frozenset(STANDARD_FIELDS)
"""The fields every record has, besides the custom ones (``record.value('amount')``)."""

_RECORDS = ("record", "previous")
_DICT_READS = frozenset({"get", "items", "keys", "values"})
_DICT_WRITES = frozenset({"update", "pop", "popitem", "clear", "setdefault", "__setitem__"})
_CALLS_NAMING_A_FIELD = {("record", "value"), ("record", "fields", "get"), ("label",)}
"""Calls whose first argument is a field's name: ``record.value('x')``, ``label('x')``..."""


def unknown_names(env: Environment, source: str, names: Names) -> list[tuple[int, str]]:
    """The names a template uses that its context will not have, each with its line in the
    template: every branch is read (``{% if %}`` or not), so a typo in a rarely taken one is
    found before it runs. A template that does not compile gives its syntax error instead.

    Returns:
        ``(line, problem)`` pairs, in the template's order.
    """
    try:
        tree = env.parse(source)
        env.compile(tree)  # unknown filters and tests are found only here
    except TemplateSyntaxError as exc:
        return [(exc.lineno, f"template syntax error: {exc.message}")]
    except TemplateError as exc:
        return [(getattr(exc, "lineno", None) or 1, f"template error: {exc}")]
    own = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    guarded = _guarded(tree)
    found: dict[str, int] = {}
    for name in sorted(meta.find_undeclared_variables(tree) - set(env.globals)):
        if name not in names.variables and (name,) not in guarded:
            line = next(n.lineno for n in tree.find_all(nodes.Name) if n.name == name)
            known = ", ".join(sorted(names.variables))
            found.setdefault(
                f"unknown name {name!r}{_suggest(name, names.variables)}; a template here may "
                f"use: {known}",
                line,
            )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        path = _path(node.node if isinstance(node, nodes.Call) else node)
        if path and path[0] not in own and not any(tuple(path[: len(g)]) == g for g in guarded):
            problem = _call_problem(node, path, names) if isinstance(node, nodes.Call) else None
            problem = problem or _path_problem(path, names)
            if problem:
                found.setdefault(problem, node.lineno)
    return sorted(((line, problem) for problem, line in found.items()), key=lambda p: p[0])


_GUARDS = frozenset({"defined", "undefined"})
_DEFAULTS = frozenset({"default", "d"})


def _guarded(tree: nodes.Template) -> set[tuple[str | int, ...]]:
    """The names a template itself allows to be missing: ``x is defined``, ``x | default``."""
    out = set()
    for test in tree.find_all(nodes.Test):
        if test.name in _GUARDS and (path := _path(test.node)):
            out.add(tuple(path))
    for flt in tree.find_all(nodes.Filter):
        if flt.name in _DEFAULTS and flt.node is not None and (path := _path(flt.node)):
            out.add(tuple(path))
    return out


def _path(node: nodes.Node) -> list[str | int] | None:
    """``record.fields['x']`` -> ``['record', 'fields', 'x']``; None for anything computed."""
    out: list[str | int] = []
    while True:
        if isinstance(node, nodes.Getattr):
            out.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if not isinstance(node.arg.value, str | int):
                return None
            out.append(node.arg.value)
        elif isinstance(node, nodes.Name):
            return [node.name, *reversed(out)]
        else:
            return None
        node = node.node


def _path_problem(path: list[str | int], names: Names) -> str | None:
    root, rest = path[0], path[1:]
    if root in _RECORDS:
        return _record_problem(str(root), rest, names.fields, names.kinds)
    key = rest[0] if rest and isinstance(rest[0], str) and rest[0] not in _DICT_READS else None
    if root == "lookups" and key is not None:
        if key not in names.lookups:
            return _unknown(f"lookups.{key}", "the rule has no look-up", key, set(names.lookups))
        if len(rest) > 2 and isinstance(rest[1], int):  # lookups.x[0].fields.y
            return _record_problem(f"lookups.{key}[{rest[1]}]", rest[2:], names.lookups[key])
    if root == "constants" and key is not None and key not in names.constants:
        return _unknown(f"constants.{key}", "no constant", key, names.constants)
    return None


def _record_problem(
    what: str, rest: list[str | int], custom: frozenset[str] | None, kinds: str = ""
) -> str | None:
    """What is wrong with ``<what>.<rest>`` (``record.fields.x``), if anything."""
    if not rest or not isinstance(rest[0], str):
        return None
    if rest[0] not in RECORD_NAMES:
        choices = RECORD_NAMES - {"fields"} | {"fields.<name>"}
        return _unknown(f"{what}.{rest[0]}", "a record has no", rest[0], choices)
    if rest[0] != "fields" or len(rest) < 2 or not isinstance(rest[1], str):
        return None
    name = rest[1]
    if custom is None or name in custom or name in _DICT_READS:
        return None
    shown = f"{what}.fields.{name}"
    if name in _DICT_WRITES:
        return f"{shown}: a template cannot change a record ({name} is refused); read fields only"
    if name in RECORD_NAMES:
        return f"{shown}: {name} is a standard field of every record: write {what}.{name}"
    of = f" for {kinds}" if kinds else ""
    return _unknown(shown, f"the mapping{of} has no field", name, custom)


def _call_problem(node: nodes.Call, path: list[str | int], names: Names) -> str | None:
    """``record.fields.get('x')``, ``record.value('x')``, ``label('x')`` naming no field."""
    shape = tuple(str(p) for p in path)
    if shape not in _CALLS_NAMING_A_FIELD or not node.args:
        return None
    arg = node.args[0]
    if names.fields is None or not isinstance(arg, nodes.Const) or not isinstance(arg.value, str):
        return None
    known = names.fields if shape[-1] == "get" else names.fields | _FIELD_NAMES
    if arg.value in known:
        return None
    shown = f"{'.'.join(shape)}({arg.value!r})"
    of = f" for {names.kinds}" if names.kinds else ""
    return _unknown(shown, f"the mapping{of} has no field", arg.value, known)


def _unknown(shown: str, problem: str, name: str, choices: set[str] | frozenset[str]) -> str:
    listing = ", ".join(sorted(choices)) or "none"
    return f"{shown}: {problem} {name!r}{_suggest(name, choices)}; known: {listing}"


def _suggest(word: str, choices: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
