"""PHP-style bracket keys (``data[FIELDS][ID]=7``), the wire format of Bitrix24 and amoCRM.

Both CRMs serialise with PHP's ``http_build_query``; Werkzeug hands us the keys flat, so the
nesting is rebuilt here once for every receiver (ingress, sandboxes, batch commands).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


class FormKeyError(ValueError):
    """A form key that is not of the ``name[a][b]`` shape."""


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest flat ``(key, value)`` pairs with bracket keys into dicts.

    Lists stay dicts keyed by their string index (``"0"``, ``"1"``), because PHP arrays are
    maps and amoCRM numbers entities inside them; :func:`as_list` turns one into a list.

    Raises:
        FormKeyError: a key with unbalanced brackets.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            raise FormKeyError(f"malformed form key {key!r}")
        path = [match.group(1), *_PART.findall(match.group(2))]
        _put(root, path, value, key)
    return root


def parse_query(query: str) -> dict[str, Any]:
    """Parse a query string (``a[b]=1&c=2``) into nested dicts."""
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def _put(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for i, part in enumerate(path[:-1]):
        if part == "":
            part = str(len(node))
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise FormKeyError(f"form key {key!r} nests under a scalar at {path[: i + 1]}")
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
