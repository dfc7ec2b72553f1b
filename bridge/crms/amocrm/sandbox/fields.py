"""Lead custom fields of the amoCRM sandbox: definitions, the write check, read and hook shapes.

https://www.amocrm.ru/developers/content/crm_platform/custom-fields (definitions and the write
shape), reference §2.7: write ``[{"field_id"|"field_code", "values": [{"value"}|{"enum_id"}|
{"enum_code"}]}]``; the read shape adds ``field_name``/``field_code``/``field_type`` and echoing
it back fails validation (``FieldNotExpected``, Krukov/amocrm_api#112).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bridge.crms.amocrm.sandbox.data import MISSING, NOT_A_CHOICE, NOT_EXPECTED, WRONG_TYPE

ENUM_TYPES = ("select", "multiselect", "radiobutton")
FIELD_KEYS = ("field_id", "field_code", "values")
VALUE_KEYS = ("value", "enum_id", "enum_code")

# (code, path, detail) of one validation failure; the caller adds the request_id.
Failure = tuple[str, str, str]


def _fail(kind: tuple[str, str], path: str) -> Failure:
    return (kind[0], path, kind[1])


class FieldBook:
    """The account's lead custom fields by id."""

    def __init__(self) -> None:
        self.fields: dict[int, dict[str, Any]] = {}

    def add(
        self,
        field_id: int,
        name: str,
        type: str,
        enums: list[tuple[int, str]] | None,
        code: str | None,
    ) -> None:
        """Define (or replace) a field, shaped as GET /api/v4/leads/custom_fields lists it."""
        self.fields[field_id] = {
            "id": field_id,
            "name": name,
            "code": code,
            "sort": 500 + 10 * len(self.fields),
            "type": type,
            "enums": None,
            "is_api_only": False,
            "group_id": None,
            "required_statuses": [],
            "hidden_statuses": [],
        }
        if enums:
            self.fields[field_id]["enums"] = [
                {"id": eid, "value": text, "sort": 500 + 10 * i, "code": None}
                for i, (eid, text) in enumerate(enums)
            ]

    def definitions(self) -> list[dict[str, Any]]:
        """All definitions, in id order."""
        return [copy.deepcopy(self.fields[k]) for k in sorted(self.fields)]

    def check(self, raw: Any) -> tuple[dict[int, dict[str, Any] | None], list[Failure]]:
        """Validate a written ``custom_fields_values``.

        Returns:
            ``{field_id: read-shape entry, or None to clear it}`` and the failures (paths
            relative to the entity, e.g. ``custom_fields_values.0.field_name``).
        """
        if not isinstance(raw, list):
            return {}, [_fail(WRONG_TYPE, "custom_fields_values")]
        out: dict[int, dict[str, Any] | None] = {}
        failures: list[Failure] = []
        for i, item in enumerate(raw):
            path = f"custom_fields_values.{i}"
            if not isinstance(item, Mapping):
                failures.append(_fail(WRONG_TYPE, path))
                continue
            failures += [_fail(NOT_EXPECTED, f"{path}.{k}") for k in item if k not in FIELD_KEYS]
            field, problem = self._find(item, path)
            if field is None:
                failures.append(problem)  # type: ignore[arg-type]
                continue
            entry, bad = self._entry(field, item.get("values", ...), f"{path}.values")
            failures += bad
            out[field["id"]] = entry
        return out, failures

    def _find(self, item: Mapping[str, Any], path: str) -> tuple[dict | None, Failure | None]:
        if "field_id" in item:
            found = self.fields.get(item["field_id"]) if isinstance(item["field_id"], int) else None
            return found, None if found else _fail(NOT_A_CHOICE, f"{path}.field_id")
        if "field_code" in item:
            found = next((f for f in self.fields.values() if f["code"] == item["field_code"]), None)
            return found, None if found else _fail(NOT_A_CHOICE, f"{path}.field_code")
        return None, _fail(MISSING, f"{path}.field_id")

    def _entry(
        self, field: dict[str, Any], values: Any, path: str
    ) -> tuple[dict[str, Any] | None, list[Failure]]:
        if values is ...:
            return None, [_fail(MISSING, path)]
        if values is None or values == []:
            return None, []  # assessment: an empty list clears the field
        if not isinstance(values, list):
            return None, [_fail(WRONG_TYPE, path)]
        stored, failures = [], []
        for j, raw in enumerate(values):
            value, bad = self._value(field, raw, f"{path}.{j}")
            failures += bad
            if value is not None:
                stored.append(value)
        entry = {
            "field_id": field["id"],
            "field_name": field["name"],
            "field_code": field["code"],
            "field_type": field["type"],
            "values": stored,
        }
        return entry, failures

    def _value(
        self, field: dict[str, Any], raw: Any, path: str
    ) -> tuple[dict[str, Any] | None, list[Failure]]:
        if not isinstance(raw, Mapping):
            return None, [_fail(WRONG_TYPE, path)]
        extra = [_fail(NOT_EXPECTED, f"{path}.{k}") for k in raw if k not in VALUE_KEYS]
        if extra:
            return None, extra
        if field["type"] in ENUM_TYPES:
            return self._enum_value(field, raw, path)
        if "value" not in raw:
            return None, [_fail(MISSING, f"{path}.value")]
        value = raw["value"]
        if field["type"] == "checkbox" and not isinstance(value, bool):
            return None, [_fail(WRONG_TYPE, f"{path}.value")]
        if isinstance(value, Mapping | list):
            return None, [_fail(WRONG_TYPE, f"{path}.value")]
        if field["type"] == "multitext" and raw.get("enum_code"):
            return {"value": value, "enum": raw["enum_code"]}, []
        return {"value": value}, []

    @staticmethod
    def _enum_value(
        field: dict[str, Any], raw: Mapping[str, Any], path: str
    ) -> tuple[dict[str, Any] | None, list[Failure]]:
        enums = field["enums"] or []
        for key, attr in (("enum_id", "id"), ("enum_code", "code"), ("value", "value")):
            if key in raw:
                match = next(
                    (e for e in enums if raw[key] is not None and e[attr] == raw[key]), None
                )
                if match is None:
                    return None, [_fail(NOT_A_CHOICE, f"{path}.{key}")]
                return {"value": match["value"], "enum_id": match["id"]}, []
        return None, [_fail(MISSING, f"{path}.enum_id")]


def merge(current: list[dict[str, Any]] | None, changes: Mapping[int, Any]) -> list | None:
    """Apply checked changes to a lead's ``custom_fields_values`` (null when none is left)."""
    by_id = {entry["field_id"]: entry for entry in current or []}
    for field_id, entry in changes.items():
        if entry is None:
            by_id.pop(field_id, None)
        else:
            by_id[field_id] = entry
    return list(by_id.values()) or None


def legacy(values: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The hook's ``custom_fields`` block (reference §1.3): id, name, code, values[value|enum]."""
    out = []
    for entry in values or []:
        block: dict[str, Any] = {"id": entry["field_id"], "name": entry["field_name"]}
        if entry["field_code"]:
            block["code"] = entry["field_code"]
        block["values"] = [
            {"value": v["value"], **({"enum": v["enum_id"]} if "enum_id" in v else {})}
            for v in entry["values"]
        ]
        out.append(block)
    return out
