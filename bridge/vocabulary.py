"""A tenant's words: canonical records from what an admin writes in scenarios and dry runs.

An admin may write a record in canonical words (``stage: kp_sent``, ``responsible: ivanova``,
``refusal_reason: ...``) or paste the CRM's own ones (``stage: "C3:PREPARATION"``,
``responsible: "7"``, ``UF_CRM_1700000001: ...``). With a tenant, the CRM's ids are translated
through its mapping and anything the mapping does not know is refused with the canonical
names to use, so that a raw id never silently matches nothing. Without a tenant, values are
taken as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bridge import yamlfile
from bridge.mappings import Mapping
from bridge.models import OUTCOMES, STANDARD_FIELDS, Record

RECORD_KEYS = ("kind", "id", "crm", "stage", "outcome", "responsible", "title", "amount", "fields")
DEFAULTS: dict[str, Any] = {"kind": "deal", "id": "1", "responsible": "1", "title": ""}


class WordError(ValueError):
    """A word the tenant does not know; ``key`` is where it stands in the record as written."""

    def __init__(self, message: str, key: tuple[str, ...]) -> None:
        super().__init__(message)
        self.key = key
        self.part = ""  # set by a reader of several records (a dry run's record or previous)


@dataclass(frozen=True)
class Vocabulary:
    """What a tenant's mapping knows, to read records written by an admin.

    Attributes:
        crm: the name records carry (the tenant's CRM, or ``scenario``).
        mapping: the tenant's mapping; None reads every value as written.
        kinds: the record kinds the CRM offers (all when None).
    """

    crm: str = "scenario"
    mapping: Mapping | None = None
    kinds: tuple[str, ...] | None = None

    def record(self, data: MappingABC[str, Any]) -> Record:
        """A canonical record from a record written by an admin.

        Keys besides the record's own (kind, id, stage, outcome, responsible, title, amount)
        are canonical fields, as are the keys under ``fields``.

        Raises:
            WordError: a kind, stage, user or field the tenant does not know (the message
                names the canonical words to use; ``key`` where it stands).
        """
        raw = {**DEFAULTS, **{k: v for k, v in data.items() if k != "fields"}}
        flat = {k: v for k, v in raw.items() if k not in RECORD_KEYS}
        nested = data.get("fields") or {}
        if not isinstance(nested, dict):
            raise WordError("`fields` must be a mapping of field: value", ("fields",))
        kind = str(raw["kind"])
        if self.kinds is not None and kind not in self.kinds:
            raise WordError(_unknown("record kind", kind, set(self.kinds)), ("kind",))
        with _at("stage"):
            stage, outcome = self.stage(kind, raw.get("stage"), raw.get("outcome"))
        responsible = raw.get("responsible")
        with _at("responsible"):
            who = self.user(responsible) if responsible not in (None, "") else None
        with _at("amount"):
            amount = _number(raw.get("amount"))
        fields = {}
        for where, given in (((), flat), (("fields",), nested)):
            for key, value in given.items():
                with _at(*where, str(key)):
                    fields.update(self.fields(kind, {key: value}))
        return Record(
            kind=kind,
            id=str(raw["id"]),
            crm=str(raw.get("crm") or self.crm),
            stage=stage,
            outcome=outcome,
            responsible=who,
            title=str(raw.get("title") or ""),
            amount=amount,
            fields=fields,
        )

    def stage(self, kind: str, stage: Any, outcome: Any = None) -> tuple[str | None, str]:
        """A canonical stage and outcome: ``lost`` / ``won`` set the outcome as well.

        Raises:
            ValueError: a stage the mapping does not know, or an outcome not open/won/lost.
        """
        if outcome is not None and str(outcome) not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if stage is None:
            return None, str(outcome or "open")
        name = str(stage)
        if name in OUTCOMES:
            return name, str(outcome or name)
        if self.mapping is None:
            return name, str(outcome or "open")
        known = self.mapping.canonical_stages(kind)
        if name in known:
            return name, str(outcome or "open")
        translated = self.mapping.stage_name(kind, name)
        if translated != name:
            return translated, str(outcome or "open")
        if outcome in ("won", "lost"):
            return name, str(outcome)  # a final stage of the CRM: mappings name none of them
        raise ValueError(
            _unknown(f"stage of a {kind}", name, known)
            + "; a CRM stage id must be one the mapping names (a failure stage is `lost`)"
        )

    def user(self, who: Any) -> str:
        """A CRM user id from an alias of the mapping or an id.

        Raises:
            ValueError: neither an alias nor a number.
        """
        text = str(who)
        if self.mapping is None or text.isdigit() or text in self.mapping.users.values():
            return text
        if text in self.mapping.users:
            return self.mapping.users[text]
        raise ValueError(_unknown("user", text, set(self.mapping.users)) + ", or a user id")

    def fields(self, kind: str, fields: MappingABC[str, Any]) -> dict[str, Any]:
        """Canonical fields from canonical names or the CRM's field codes; list item ids of
        the CRM become canonical values.

        Raises:
            ValueError: a name that is neither a canonical field nor a code of the mapping.
        """
        if self.mapping is None:
            return dict(fields)
        km = self.mapping.kind(kind)
        codes = {code: name for name, code in km.fields.items()}
        out: dict[str, Any] = {}
        for key, value in fields.items():
            name = key if key in km.fields or key in STANDARD_FIELDS else codes.get(key)
            if name is None:
                raise ValueError(_unknown(f"field of a {kind}", key, set(km.fields)))
            values = km.values.get(name) or {}
            out[name] = values.get(str(value), value) if value is not None else None
        return out


@contextmanager
def _at(*key: str) -> Iterator[None]:
    """Name where a word stands when it turns out unknown."""
    try:
        yield
    except WordError:
        raise
    except ValueError as exc:
        raise WordError(str(exc), key) from None


def activity(match: Any) -> dict[str, Any] | None:
    """An activity as an event brings it (one type, one outcome), from a description written
    as a condition's ``{type: call, completed: true}`` (a pydantic model or None)."""
    if match is None:
        return None
    data = match.model_dump(exclude_none=True) if hasattr(match, "model_dump") else dict(match)
    return {k: v[0] if isinstance(v, list) and v else v for k, v in data.items()}


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        raise ValueError(f"amount must be a number, not {value!r}") from None


def _unknown(what: str, name: str, choices: set[str]) -> str:
    hint = yamlfile.suggest(name, sorted(choices))
    return f"unknown {what} {name!r}{hint}; known: {', '.join(sorted(choices)) or 'none'}"
