"""Load YAML keeping the line of every key, so that each config error can name file:line."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.errors import ConfigError

Loc = tuple[str | int, ...]

MAX_DEPTH = 32
"""Lists and mappings nested deeper than this are refused: no configuration needs it, and a
file nested thousands deep (by mistake or on purpose) would crash the parser."""

MAX_VALUES = 100_000
"""Values a file may expand to, aliases (``*name``) counted each time they repeat an anchor:
a few nested aliases (a "billion laughs") would otherwise build billions of values."""

_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    yaml.ScalarNode: {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")},
    yaml.SequenceNode: {f"{_CORE}seq"},
    yaml.MappingNode: {f"{_CORE}map"},
}
"""The tags of plain YAML (text, numbers, true/false, null, dates, lists, mappings), which
PyYAML's resolver gives untagged values: every other tag (``!!python/object``, ``!!binary``,
a custom ``!tag``) is refused, never silently read as a plain value."""


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
    lines: dict[Loc, int] = {}
    try:
        _check_depth(text)  # before compose, which recurses once per level
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = _Builder(lines).build(node, ()) if node is not None else {}
    except _BadNode as exc:
        raise ConfigError([f"{path}:{exc.line}: not valid YAML: {exc.args[0]}"]) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ConfigError([f"{path}:{line}: not valid YAML: {exc.problem}"]) from exc
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, no mark
        line = text[: exc.position].count("\n") + 1
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "byte"
        raise ConfigError([f"{path}:{line}: not valid YAML: a {what} YAML does not allow"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    return YamlDoc(path=path, data=data, lines=lines)


def _check_depth(text: str) -> None:
    """Refuse lists and mappings nested past :data:`MAX_DEPTH`, reading the file as a flat
    stream of events (which no nesting can crash).

    Raises:
        _BadNode: at the line where the limit is passed.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _BadNode(
                    f"lists and mappings nested more than {MAX_DEPTH} deep; no setting needs "
                    "that many levels: flatten it",
                    event,
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


@dataclass
class _Builder:
    """Turns composed nodes into values, recording the line of each key path, with every
    alias expanded: a tag other than plain YAML's, an alias inside its own anchor, nesting past
    :data:`MAX_DEPTH` and more than :data:`MAX_VALUES` values are refused."""

    lines: dict[Loc, int]
    built: int = 0
    open: set[int] = field(default_factory=set)  # the nodes being built, outermost first

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        """The value of ``node`` found at key path ``loc``."""
        self._admit(node, loc)
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            self._admit(key_node, loc)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadNode("a key must be a plain word, not a list or a mapping", key_node)
            key = _scalar(key_node)
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*loc, key))
        return out

    def _admit(self, node: yaml.Node, loc: Loc) -> None:
        if node.tag == f"{_CORE}merge":
            raise _BadNode("the merge key << is not supported: write the keys out", node)
        if node.tag not in _PLAIN_TAGS.get(type(node), ()):
            tag = node.tag.replace(_CORE, "!!", 1)
            raise _BadNode(
                f"the tag {tag} is not allowed: the bridge reads plain YAML (text, numbers, "
                f"true/false, dates, lists, mappings); remove {tag}",
                node,
            )
        if id(node) in self.open:
            raise _BadNode(
                "an alias (*name) inside the very anchor (&name) it repeats would never end: "
                "write the value out",
                node,
            )
        if len(loc) > MAX_DEPTH:
            raise _BadNode(
                f"aliases (*name) nest lists and mappings more than {MAX_DEPTH} deep: "
                "write the values out",
                node,
            )
        self.built += 1
        if self.built > MAX_VALUES:
            raise _BadNode(
                f"the file expands to more than {MAX_VALUES:,} values, aliases (*name) counted "
                "each time they repeat their anchor: write the values out, or repeat less",
                node,
                line=self.lines.get(loc[:1]),  # the key being expanded: the anchor is elsewhere
            )


class _BadNode(Exception):
    """A node PyYAML parsed but cannot turn into a value (a date that does not exist, a tag
    that is not plain YAML...)."""

    def __init__(self, message: str, node: yaml.Node | yaml.Event, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line or node.start_mark.line + 1


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        raise
    except Exception as exc:  # a tagged or date-shaped text PyYAML cannot build (2025-13-45)
        raise _BadNode(f"{node.value!r}: {exc}", node) from None
    finally:
        loader.dispose()


def validate(
    model: type[BaseModel], doc: YamlDoc, at: Sequence[str | int] = (), data: Any = None
) -> Any:
    """Validate ``doc.data`` (or ``data`` found at key path ``at``) with a pydantic model.

    Errors become ``file:line: key: problem`` lines, one per mistake: where a value may take
    several shapes (a condition is one of a dozen forms), only the shape the value comes
    closest to is reported, not why every other shape fails too.

    Raises:
        ConfigError: with one line per problem.
    """
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        schema = model.model_json_schema()
        node = doc.data
        for part in at:
            node = node[part]
        problems = [
            _describe(doc, item, schema, tuple(at)) for item in collapse(exc.errors(), node)
        ]
        raise ConfigError(list(dict.fromkeys(problems))) from exc


@dataclass
class Located:
    """A pydantic error placed in the data: its key path, and the union members it went through.

    Attributes:
        error: pydantic's error dict.
        loc: the keys of the file that lead to the problem.
        branches: ``(key path, member)`` for each union the value was tried against that is
            still undecided (see :func:`collapse`).
        chosen: the union members picked so far, by key path (for the keys allowed there).
    """

    error: dict[str, Any]
    loc: Loc
    branches: tuple[tuple[Loc, str], ...] = ()
    chosen: tuple[tuple[Loc, str], ...] = ()


def locate(error: dict[str, Any], data: Any) -> Located:
    """Split pydantic's ``loc`` into keys of the data and union member names.

    pydantic inserts the names of union members (``FieldCondition``, ``function-after[...]``,
    ``list[str]``) into ``loc``; an admin must see only the keys of the file.
    """
    loc: list[str | int] = []
    branches: list[tuple[Loc, str]] = []
    node = data
    parts = error["loc"]
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif i == len(parts) - 1 and error["type"] in _KEY_ERRORS and isinstance(node, dict):
            pass  # a missing or unknown key: keep it, it is what the error is about
        elif isinstance(part, str):
            branches.append((tuple(loc), part))
            continue
        loc.append(part)
    return Located(error, tuple(loc), tuple(branches))


def collapse(errors: Sequence[dict[str, Any]], data: Any) -> list[Located]:
    """One mistake, one error: keep, at each union, only the member the value is closest to.

    ``{field: amount, gt: "500 000"}`` fails as a field condition (the number) and as each of
    the other condition forms (their keys are missing, these are unknown): only the first is
    the admin's mistake. A member is closer the fewer of its own keys are missing or unknown
    (a misspelt key paired with the missing one it resembles counts once).
    """
    items = [locate(err, data) for err in errors]
    kept = _collapse(items)
    order = {id(item.error): i for i, item in enumerate(items)}
    kept.sort(key=lambda item: order[id(item.error)])
    return _pair_misspellings(kept)


def _collapse(items: list[Located]) -> list[Located]:
    out = [item for item in items if not item.branches]
    unions: dict[Loc, dict[str, list[Located]]] = {}
    for item in items:
        if item.branches:
            path, member = item.branches[0]
            unions.setdefault(path, {}).setdefault(member, []).append(item)
    for path, members in unions.items():
        member, group = min(members.items(), key=lambda kv: _distance(kv[1], path))
        out += _collapse(
            [Located(i.error, i.loc, i.branches[1:], (*i.chosen, (path, member))) for i in group]
        )
    return out


def _distance(group: list[Located], path: Loc) -> tuple[int, int]:
    own = [i for i in group if len(i.loc) == len(path) + 1 and i.error["type"] in _KEY_ERRORS]
    unknown = [str(i.loc[-1]) for i in own if i.error["type"] == "extra_forbidden"]
    missing = [str(i.loc[-1]) for i in own if i.error["type"] == "missing"]
    paired = sum(1 for key in unknown if difflib.get_close_matches(key, missing, n=1))
    return len(unknown) + len(missing) - paired, len(group)


def _pair_misspellings(items: list[Located]) -> list[Located]:
    """Drop "X is missing" where an unknown key beside it is X misspelt (one mistake)."""
    unknown: dict[Loc, list[str]] = {}
    for item in items:
        if item.error["type"] == "extra_forbidden":
            unknown.setdefault(item.loc[:-1], []).append(str(item.loc[-1]))
    return [
        item
        for item in items
        if not (
            item.error["type"] == "missing"
            and difflib.get_close_matches(str(item.loc[-1]), unknown.get(item.loc[:-1], []), n=1)
        )
    ]


_KEY_ERRORS = ("missing", "extra_forbidden")


def _describe(doc: YamlDoc, item: Located, schema: dict[str, Any], at: Loc) -> str:
    err, loc = item.error, item.loc
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(schema, item)
        msg = f"unknown key {loc[-1]!r}" + suggest(str(loc[-1]), allowed)
        if allowed:
            msg += f"; allowed here: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = _message(err)
    full = (*at, *loc)
    return f"{doc.where(full)}: {dotted(full) or '(top level)'}: {msg}"


def _allowed_keys(schema: dict[str, Any], item: Located) -> list[str]:
    """The keys allowed beside an unknown one: those of the union member chosen there, if any."""
    for path, member in reversed(item.chosen):
        if path == item.loc[:-1]:
            names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", member)
            found = schema.get("$defs", {}).get(names[-1] if names else "", {})
            if "properties" in found:
                return list(found["properties"])
    return _schema_keys(schema, item.loc[:-1]) if schema else []


def _message(err: dict[str, Any]) -> str:
    """pydantic's message, in the words of a YAML file (a mapping, a list, a number)."""
    given = err.get("input")
    shown = f", got {given!r}" if isinstance(given, str | int | float | bool) else ""
    kind = err["type"]
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type", "int_from_float"):
        hint = (
            " (digits only: 500000, not 500 000)" if isinstance(given, str) and " " in given else ""
        )
        return f"expected a number{shown}{hint}"
    words = {
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected text",
        "list_type": "expected a list ([a, b] or lines starting with -)",
        "dict_type": "expected a mapping (key: value)",
        "model_type": "expected a mapping (key: value)",
        "model_attributes_type": "expected a mapping (key: value)",
        "datetime_parsing": "expected a date and time such as 2025-11-14T10:00:00+03:00",
        "datetime_type": "expected a date and time such as 2025-11-14T10:00:00+03:00",
        "date_parsing": "expected a date such as 2025-12-31",
        "date_from_datetime_parsing": "expected a date such as 2025-12-31",
    }
    if kind in words:
        return words[kind] + shown
    return err["msg"].removeprefix("Value error, ")


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
