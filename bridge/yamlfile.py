"""Load YAML keeping the line of every key, so that each config error can name file:line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.errors import ConfigError

Loc = tuple[str | int, ...]


class Strict(BaseModel):
    """Base of every YAML model: an unknown key is an error (with "did you mean"), and keys
    that are Python words (``if``, ``in``, ``not``) are written by their alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass
class YamlDoc:
    """A parsed YAML file: its data and the line (1-based) of every key path."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Sequence[str | int]) -> int:
        """Line of the deepest known prefix of ``loc`` (1 when nothing matches)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Sequence[str | int]) -> str:
        """``file:line`` for a key path."""
        return f"{self.path}:{self.line(loc)}"


def load(path: str | Path) -> YamlDoc:
    """Read and parse a YAML file.

    Raises:
        ConfigError: the file is missing or is not valid YAML (with its line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    return parse(text, path)


def parse(text: str, path: str | Path = "<string>") -> YamlDoc:
    """Parse YAML text (see :func:`load`)."""
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ConfigError([f"{path}:{line}: not valid YAML: {exc.problem}"]) from exc
    doc = YamlDoc(path=path, data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _build(node, (), doc.lines)
    return doc


def _build(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def validate(
    model: type[BaseModel], doc: YamlDoc, at: Sequence[str | int] = (), data: Any = None
) -> Any:
    """Validate ``doc.data`` (or ``data`` found at key path ``at``) with a pydantic model.

    Errors become ``file:line: key: problem`` lines.

    Raises:
        ConfigError: with one line per problem.
    """
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        schema = model.model_json_schema()
        raise ConfigError([_describe(doc, err, schema, tuple(at)) for err in exc.errors()]) from exc


def _describe(doc: YamlDoc, err: dict[str, Any], schema: dict[str, Any], at: Loc) -> str:
    node = doc.data
    for part in at:
        node = node[part]
    loc = _data_loc(node, err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = _schema_keys(schema, loc[:-1]) if schema else []
        msg = f"unknown key {loc[-1]!r}" + suggest(str(loc[-1]), allowed)
        if allowed:
            msg += f"; allowed here: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    full = (*at, *loc)
    return f"{doc.where(full)}: {dotted(full) or '(top level)'}: {msg}"


def _data_loc(data: Any, loc: Sequence[str | int]) -> Loc:
    """Drop the parts of a pydantic loc that are not keys in the data.

    pydantic inserts union member names (``FieldCondition``, ``function-after[...]``) into
    ``loc``; an admin must see only the keys of the file.
    """
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, dict):
            out.append(part)  # a missing or unknown key: keep it, it is what the error is about
            continue
        else:
            continue
        out.append(part)
    return tuple(out)


def _schema_keys(schema: dict[str, Any], loc: Loc) -> list[str]:
    """The keys a JSON schema allows at ``loc`` (for "did you mean" on a misspelt key)."""
    nodes = [schema]
    for part in loc:
        nodes = [n for node in nodes for n in _children(schema, node, part)]
    keys: list[str] = []
    for node in nodes:
        for option in _options(schema, node):
            keys.extend(k for k in option.get("properties", {}) if k not in keys)
    return keys


def _options(root: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    if "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    alts = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
    if alts:
        return [o for alt in alts for o in _options(root, alt)]
    return [node]


def _children(root: dict[str, Any], node: dict[str, Any], part: str | int) -> list[dict]:
    out = []
    for option in _options(root, node):
        if isinstance(part, int) and "items" in option:
            out.append(option["items"])
        elif isinstance(part, str) and part in option.get("properties", {}):
            out.append(option["properties"][part])
        elif isinstance(part, str) and isinstance(option.get("additionalProperties"), dict):
            out.append(option["additionalProperties"])
    return out


def dotted(loc: Iterable[str | int]) -> str:
    """Render a key path as ``rules[2].then[0].create_task``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
