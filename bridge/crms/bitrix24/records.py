"""Bitrix24 entities as the bridge's records: the mapping's translation, with each multifield
(a lead's phones and e-mails) as its first value."""

from __future__ import annotations

from typing import Any

from bridge.crms.connector import to_record
from bridge.mappings import Mapping
from bridge.models import Record

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
"""A lead's multifields, each a list of ``{"VALUE": ..., "VALUE_TYPE": ...}`` ("Множественные
поля применяются для хранения телефонов, email-адресов ... В лидах, контактах и компаниях
полями этого типа являются PHONE, EMAIL, WEB и IM":
https://dev.1c-bitrix.ru/rest_help/crm/auxiliary/multifield/multifield_fields.php)."""


def bitrix_record(
    kind: str, raw: dict[str, Any], mapping: Mapping, crm: str, record_id: str
) -> Record:
    """:func:`to_record`, with each multifield as its first value's text: a pack compares a
    lead's phone like any other field, and the same pack runs on every CRM."""
    flat = {k: first_value(raw[k]) for k in MULTIFIELDS if isinstance(raw.get(k), list)}
    return to_record(kind, {**raw, **flat}, mapping, crm, record_id)


def first_value(items: Any) -> str:
    """The first non-empty ``VALUE`` of a multifield ("" when it has none)."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("VALUE"):
            return str(item["VALUE"])
    return ""
