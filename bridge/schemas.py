"""JSON Schemas of the bridge's YAML files, for editors that check and complete as one types.

``bridge schema --out .schemas`` writes one file per kind of YAML file; an editor with a YAML
plugin (VS Code's Red Hat YAML, PyCharm) maps them to the files (docs/configuration.md,
"Editors"). They come from the same models that validate the files at load, so they cannot
drift; what only the tenant's mapping can tell (is this field known?) stays with
``bridge validate``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bridge import crms
from bridge.config import BridgeConfig
from bridge.dryrun import DryRun
from bridge.mappings import TOP_KEYS, KindMapping
from bridge.regulations.pack import Pack
from bridge.regulations.values import FIELD_TYPES
from bridge.scenarios import Scenario

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _model(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    return {"$schema": DIALECT, **schema, "title": title}


def pack() -> dict[str, Any]:
    """A regulation pack (``config/regulations/*.yaml``)."""
    return _model(Pack, "Regulation pack of the CRM bridge")


def scenario() -> dict[str, Any]:
    """A scenario file (``config/regulations/scenarios/<pack>/*.yaml``)."""
    return _model(Scenario, "Scenario of a regulation pack")


def dry_run() -> dict[str, Any]:
    """A dry-run event (``bridge dry-run FILE``)."""
    return _model(DryRun, "Event for bridge dry-run")


def mapping() -> dict[str, Any]:
    """A tenant's mapping: ``version``, ``users`` and one section per record kind of any CRM."""
    kind = KindMapping.model_json_schema(by_alias=True)
    defs = kind.pop("$defs", {})
    # a field is its code, or {code, label, type} (split by the model before validation)
    long_form = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the CRM's field code"},
            "label": {"type": "string", "description": "what managers call it"},
            "type": {"enum": list(FIELD_TYPES), "description": "what empty and equal mean"},
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    fields = kind["properties"]["fields"]
    fields["additionalProperties"] = {"anyOf": [{"type": "string"}, long_form]}
    kinds = sorted({k for crm in crms.every() for k in crm.kinds()})
    properties: dict[str, Any] = {
        "version": {"const": 1, "description": "the file's format"},
        "crm": {"enum": crms.names(), "description": "the CRM the mapping is for (optional)"},
        "users": {
            "type": "object",
            "description": "user alias -> the CRM's user id (quoted)",
            "additionalProperties": {"type": "string"},
        },
    }
    properties |= {k: {"$ref": "#/$defs/KindMapping", "description": f"{k}s"} for k in kinds}
    assert set(TOP_KEYS) <= set(properties)
    return {
        "$schema": DIALECT,
        "title": "Mapping of a tenant's CRM to the canonical names",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "$defs": {**defs, "KindMapping": kind},
    }


def config() -> dict[str, Any]:
    """The tenants file (``config/bridge.yaml``): each tenant's ``connection`` is checked
    against the settings of its ``crm``."""
    schema = _model(BridgeConfig, "Tenants of the CRM bridge")
    defs = schema.setdefault("$defs", {})
    tenant = defs["TenantConfig"]
    tenant["properties"]["crm"] = {**tenant["properties"]["crm"], "enum": crms.names()}
    branches = []
    for crm in crms.every():
        settings = crm.settings.model_json_schema(by_alias=True)
        defs.update(settings.pop("$defs", {}))
        name = crm.settings.__name__
        defs[name] = settings
        branches.append(
            {
                "if": {"properties": {"crm": {"const": crm.name}}, "required": ["crm"]},
                "then": {"properties": {"connection": {"$ref": f"#/$defs/{name}"}}},
            }
        )
    tenant["allOf"] = branches
    return schema


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "pack": pack,
    "scenario": scenario,
    "mapping": mapping,
    "config": config,
    "dry-run": dry_run,
}
"""Every schema by its name (the file ``<name>.schema.json``)."""


def write(folder: Path) -> list[Path]:
    """Write every schema to ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in SCHEMAS.items():
        path = folder / f"{name}.schema.json"
        text = json.dumps(build(), ensure_ascii=False, indent=2)
        path.write_text(text + "\n", encoding="utf-8")
        out.append(path)
    return out
