"""PHP-style bracket keys (``data[FIELDS][ID]=7``), the wire format of Bitrix24 and amoCRM.

Both CRMs serialise with PHP's ``http_build_query``; Werkzeug hands us the keys flat, so the
nesting is rebuilt here once for every receiver (ingress, sandboxes, batch commands).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class FormLimits:
    """How much of a form body the bridge reads before refusing it.

    Far above what a CRM sends (a Bitrix24 event is some 10 keys, 2 brackets deep; an amoCRM
    hook with 100 leads and their custom fields a few thousand keys, 7 deep), far below what
    costs a worker's memory or Python's recursion limit (json and repr recurse per level).
    """

    max_bytes: int = 1024 * 1024
    max_keys: int = 10_000
    max_depth: int = 10
    """Brackets after the name: ``leads[status][0][custom_fields][0][values][0][value]`` has 7."""
    max_key_length: int = 256


LIMITS = FormLimits()
"""The limits every webhook receiver applies (bridge/crms/receive.py)."""


class FormKeyError(ValueError):
    """A form key that is not of the ``name[a][b]`` shape, or one past the limits."""


class FormTooLarge(FormKeyError):
    """A body with more bytes or keys than :class:`FormLimits` allows (HTTP 413)."""


def decode(body: bytes, limits: FormLimits = LIMITS) -> dict[str, Any]:
    """Decode an ``application/x-www-form-urlencoded`` body into nested dicts.

    The size and the number of keys are checked on the raw bytes, before anything is
    parsed; each key's length and depth before it is nested. Bytes that are not UTF-8 are
    replaced (U+FFFD), as both CRMs send UTF-8.

    Raises:
        FormTooLarge: more bytes or keys than ``limits`` allows.
        FormKeyError: a malformed, too long or too deep key.
    """
    if len(body) > limits.max_bytes:
        raise FormTooLarge(f"the body has {len(body)} bytes; at most {limits.max_bytes} are read")
    keys = body.count(b"&") + 1
    if keys > limits.max_keys:
        raise FormTooLarge(f"the body has {keys} form keys; at most {limits.max_keys} are read")
    text = body.decode("utf-8", errors="replace")
    return parse_pairs(pairs_of(text, limits), limits)


def pairs_of(text: str, limits: FormLimits = LIMITS) -> Iterator[tuple[str, str]]:
    """The ``(key, value)`` pairs of a form or query, decoded as
    ``urllib.parse.parse_qsl(text, keep_blank_values=True)`` decodes them.

    A CRM sends the same few keys, percent-encoded, in every call: each is decoded once per
    process (up to 4096 of them, none longer than a key ``limits`` would read), the values
    every time.
    """
    longest = 3 * limits.max_key_length  # each character of a key as its %XX at most
    for piece in text.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            key = _unquote_key(name) if len(name) <= longest else _unquote(name)
            yield key, _unquote(value)


def _unquote(text: str) -> str:
    return unquote(text.replace("+", " "), errors="replace")


_unquote_key = functools.lru_cache(maxsize=4096)(_unquote)


def parse_pairs(pairs: Iterable[tuple[str, str]], limits: FormLimits = LIMITS) -> dict[str, Any]:
    """Nest flat ``(key, value)`` pairs with bracket keys into dicts.

    Lists stay dicts keyed by their string index (``"0"``, ``"1"``), because PHP arrays are
    maps and amoCRM numbers entities inside them; :func:`as_list` turns one into a list.

    Raises:
        FormKeyError: a key with unbalanced brackets, longer or deeper than ``limits``.
        FormTooLarge: more pairs than ``limits`` allows.
    """
    root: dict[str, Any] = {}
    for count, (key, value) in enumerate(pairs, 1):
        if count > limits.max_keys:
            raise FormTooLarge(f"more than {limits.max_keys} form keys")
        _put(root, _path(key, limits), value, key)
    return root


def _path(key: str, limits: FormLimits) -> tuple[str, ...]:
    if len(key) > limits.max_key_length:
        raise FormKeyError(
            f"form key {clip(key)!r} has {len(key)} characters; at most "
            f"{limits.max_key_length} are read"
        )
    path = _split(key)
    if path is None:
        raise FormKeyError(f"malformed form key {clip(key)!r}")
    if len(path) - 1 > limits.max_depth:
        raise FormKeyError(
            f"form key {clip(key)!r} nests {len(path) - 1} brackets deep; at most "
            f"{limits.max_depth} are read"
        )
    return path


@functools.lru_cache(maxsize=4096)
def _split(key: str) -> tuple[str, ...] | None:
    # a CRM sends the same few keys in every call: each is split once per process (the
    # length is checked before: the cache holds at most 4096 keys of max_key_length)
    match = _KEY.match(key)
    if not match:
        return None
    return (match.group(1), *_PART.findall(match.group(2)))


def clip(text: str, length: int = 60) -> str:
    """A caller's text cut to quote it in a reason (the whole may be a megabyte)."""
    return text if len(text) <= length else f"{text[:length]}..."


def parse_query(query: str) -> dict[str, Any]:
    """Parse a query string (``a[b]=1&c=2``) into nested dicts."""
    return parse_pairs(pairs_of(query))


def _put(node: dict[str, Any], path: tuple[str, ...], value: str, key: str) -> None:
    for i, part in enumerate(path[:-1]):
        if part == "":
            part = str(len(node))
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            at = "".join(f"[{p}]" for p in path[1 : i + 1])
            raise FormKeyError(f"form key {clip(key)!r} nests under the value of {path[0]}{at}")
        node = child
    last = path[-1] if path[-1] != "" else str(len(node))
    node[last] = value


def as_list(value: Any) -> list[Any]:
    """Return a PHP array (dict keyed ``"0"``, ``"1"``...) or a list as a list in index order."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value, key=_index_order)]
    return [value]


def _index_order(key: str) -> tuple[bool, int, str]:
    return (not key.isdigit(), int(key) if key.isdigit() else 0, key)


def build_query(params: Mapping[str, Any], prefix: str = "") -> str:
    """Serialise nested params the way PHP's ``http_build_query`` does.

    ``None`` becomes an empty string and booleans ``1``/``0``, as PHP sends them
    (fast-bitrix24 would send ``"None"`` and ``"True"``; see reference/bitrix24.md §4).
    """
    pairs = flatten(params, prefix)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested params into ``(bracket_key, string_value)`` pairs."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out.extend(flatten(value, name))
        elif isinstance(value, list | tuple):
            out.extend(flatten({str(i): v for i, v in enumerate(value)}, name))
        else:
            out.append((name, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
