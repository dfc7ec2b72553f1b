"""Mappings: which of a tenant's CRM fields, stages and users mean which canonical name.

Each CRM ships defaults for its standard fields (``bridge/crms/<name>/mapping.yaml``); the
tenant's file overrides and extends them. A mapping has one section per record kind
(``deal:``, ``lead:``, ``order:``...): which kinds exist is the CRM's to declare, and
:mod:`bridge.config` checks the sections against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge import yamlfile
from bridge.models import OUTCOMES
from bridge.regulations.values import FIELD_TYPES

TOP_KEYS = ("version", "crm", "users")


class KindMapping(BaseModel):
    """Mapping of one record kind (deal, lead...).

    A field is written short, ``name: CODE``, or long, ``name: {code: CODE, label: "Как в
    CRM", type: date}``: the label is what managers read in the bridge's texts (never the
    canonical name), the type says what empty and equal mean (:data:`FIELD_TYPES`).
    """

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str] = Field(
        default_factory=dict, description="canonical field name -> the CRM's field code"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="canonical field name -> its label in the CRM"
    )
    types: dict[str, str] = Field(
        default_factory=dict, description=f"canonical field name -> {', '.join(FIELD_TYPES)}"
    )
    stages: dict[str, list[str]] = Field(
        default_factory=dict, description="canonical stage name -> the CRM's stage ids"
    )
    outcomes: dict[str, str] = Field(
        default_factory=dict,
        description="the CRM's stage-semantics value -> open / won / lost",
    )
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="canonical field -> {CRM list-item id: canonical value}",
    )
    pipelines: list[str] = Field(
        default_factory=list,
        description="the CRM's pipeline ids that hold this kind (where one entity of the CRM "
        "holds several kinds, told apart by pipeline); empty: decided by the connector",
    )

    @model_validator(mode="before")
    @classmethod
    def _long_fields(cls, data: Any) -> Any:
        # `name: {code, label, type}` is split into fields, labels and types
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return data
        fields, labels, types = {}, dict(data.get("labels") or {}), dict(data.get("types") or {})
        for name, spec in data["fields"].items():
            if isinstance(spec, dict):
                unknown = set(spec) - {"code", "label", "type"}
                if unknown or "code" not in spec:
                    extra = f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""
                    raise ValueError(
                        f"field {name!r}: write `{{code: ..., label: ..., type: ...}}` "
                        f"(code required){extra}"
                    )
                fields[name] = spec["code"]
                if spec.get("label"):
                    labels[name] = str(spec["label"])
                if spec.get("type"):
                    types[name] = str(spec["type"])
            else:
                fields[name] = spec
        return {**data, "fields": fields, "labels": labels, "types": types}

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for name, kind in value.items():
            if kind not in FIELD_TYPES:
                hint = yamlfile.suggest(kind, FIELD_TYPES)
                raise ValueError(
                    f"field {name!r}: unknown type {kind!r}{hint}; one of {', '.join(FIELD_TYPES)}"
                )
        return value


class Mapping(BaseModel):
    """A tenant's whole mapping, defaults merged in."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    crm: str = ""
    users: dict[str, str] = Field(default_factory=dict, description="alias -> CRM user id")
    kinds: dict[str, KindMapping] = Field(
        default_factory=dict, description="record kind -> its mapping (written as top keys)"
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_sections(cls, data: Any) -> Any:
        # the file says `deal: {...}`; every top key but version/crm/users is a kind
        if isinstance(data, dict) and "kinds" not in data:
            kinds = {k: v for k, v in data.items() if k not in TOP_KEYS}
            return {**{k: v for k, v in data.items() if k in TOP_KEYS}, "kinds": kinds}
        return data

    def kind(self, kind: str) -> KindMapping:
        """The mapping of one record kind (an empty one where the file has no section)."""
        return self.kinds.get(kind) or KindMapping()

    def stage_name(self, kind: str, crm_stage: str | None) -> str | None:
        """Canonical name of a CRM stage id; the id itself when unmapped."""
        for name, ids in self.kind(kind).stages.items():
            if crm_stage in ids:
                return name
        return crm_stage

    def stage_id(self, kind: str, name: str, category_prefix: str = "") -> str:
        """The CRM stage id for a canonical stage, preferring the record's own pipeline."""
        ids = self.kind(kind).stages.get(name) or [name]
        same = [i for i in ids if i.startswith(category_prefix)] if category_prefix else ids
        return (same or ids)[0]

    def field_code(self, kind: str, name: str) -> str:
        """The CRM field code of a canonical field (KeyError when unmapped)."""
        return self.kind(kind).fields[name]

    def canonical_fields(self, kind: str) -> set[str]:
        """Every canonical field name the mapping knows for a kind."""
        return set(self.kind(kind).fields)

    def canonical_stages(self, kind: str) -> set[str]:
        """Every canonical stage name a rule may use for a kind (outcomes included)."""
        return set(self.kind(kind).stages) | set(OUTCOMES)

    def labels(self) -> dict[str, dict[str, str]]:
        """Record kind -> canonical field -> its label (what managers read)."""
        return {kind: dict(km.labels) for kind, km in self.kinds.items()}

    def types(self) -> dict[str, dict[str, str]]:
        """Record kind -> canonical field -> its type."""
        return {kind: dict(km.types) for kind, km in self.kinds.items()}

    def user(self, alias_or_id: str) -> str:
        """A user id from an alias of the mapping, or the id itself."""
        return self.users.get(alias_or_id, alias_or_id)


def load(path: str | Path | None, defaults: Path) -> Mapping:
    """Load a tenant's mapping file merged over the defaults of its CRM.

    Args:
        path: the tenant's mapping file (None: the defaults alone).
        defaults: the CRM's default mapping (``CRM.mapping_path()``).

    Raises:
        bridge.errors.ConfigError: with file:line of each problem.
    """
    base = yamlfile.load(defaults).data
    if path is None:
        return yamlfile.validate(Mapping, yamlfile.YamlDoc(defaults, base))
    doc = yamlfile.load(path)
    mapping = yamlfile.validate(Mapping, doc)  # errors point into the tenant's own file
    merged = _merge(base, doc.data or {})
    return mapping.model_validate(merged) if mapping else mapping


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
