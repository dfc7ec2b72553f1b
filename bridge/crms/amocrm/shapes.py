"""amoCRM's API v4 shapes, both ways: a lead flattened for the mapping, our writes built.

Reading: ``base.to_record`` stays generic (a flat dict of CRM codes), so an amoCRM lead is
flattened here first: ids become strings (mappings name stages and users as strings), unix
times become ISO dates in the tenant's zone (what the rules' date conditions read), the lead's
loss reason lands in ``loss_reason_name``, its main contact in ``contact_id``, and every
custom field in ``cf_<field_id>``. A mapping then says e.g. ``refusal_reason:
loss_reason_name`` and ``next_contact_goal: cf_294471``.

Writing: custom fields go out as ``field_id`` + ``values`` only; echoing the read shape's
``field_name``/``field_type``/``enum_code`` is refused (``FieldNotExpected``, reference §2.7,
Krukov/amocrm_api#112).

D: = https://www.amocrm.ru/developers/content/
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bridge.errors import PermanentError

if TYPE_CHECKING:
    from bridge.mappings import Mapping

CUSTOM = "cf_"  # cf_<field_id>: a custom field's flattened key
LOSS_REASON = "loss_reason_name"
CONTACT = "contact_id"
IDS = ("id", "status_id", "pipeline_id", "responsible_user_id", "loss_reason_id")
IDS += ("created_by", "updated_by", "group_id", "account_id")
TIMES = ("created_at", "updated_at", "closed_at", "closest_task_at")
DEFAULT_KIND = "deal"  # pipelines no mapping claims: amoCRM's «сделки»
# D:crm_platform/custom-fields, «Типы полей»
ENUM_TYPES = frozenset({"select", "multiselect", "radiobutton", "category"})
MULTI_TYPES = frozenset({"multiselect", "multitext"})
DATE_TYPES = frozenset({"date", "date_time", "birthday"})
# top-level lead keys a PATCH may carry (D:crm_platform/leads-api «Редактирование сделок»)
WRITABLE = {"name": str, "price": int, "responsible_user_id": int}
WRITABLE |= {"status_id": int, "pipeline_id": int}


def iso(unix: Any, zone: ZoneInfo) -> str | None:
    """A unix time as an ISO date-time in ``zone`` (None stays None)."""
    if unix in (None, "", 0):
        return None
    try:
        return datetime.fromtimestamp(int(unix), zone).isoformat()
    except (TypeError, ValueError):
        return str(unix)


def flatten_lead(raw: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A v4 lead (D:crm_platform/leads-api, ``?with=loss_reason,contacts``) as flat codes."""
    flat: dict[str, Any] = {k: v for k, v in raw.items() if not isinstance(v, dict | list)}
    for key in IDS:
        if flat.get(key) is not None:
            flat[key] = str(flat[key])
    for key in TIMES:
        flat[key] = iso(flat.get(key), zone)
    embedded = raw.get("_embedded") or {}
    flat[LOSS_REASON] = loss_reason_name(embedded.get("loss_reason"))
    flat[CONTACT] = main_contact(embedded.get("contacts"))
    flat["tags"] = [t.get("name") for t in embedded.get("tags") or [] if isinstance(t, dict)]
    for field in raw.get("custom_fields_values") or []:
        flat[f"{CUSTOM}{field.get('field_id')}"] = custom_value(field, zone)
    return flat


def loss_reason_name(embedded: Any) -> str | None:
    """The name of ``_embedded.loss_reason``: the doc's table says object, its example an
    array (reference §2.1) - both are read."""
    items = embedded if isinstance(embedded, list) else [embedded]
    for item in items:
        if isinstance(item, dict) and item.get("name"):
            return str(item["name"])
    return None


def main_contact(contacts: Any) -> str | None:
    """The id of the lead's main contact (``is_main``), else of its first one."""
    items = [c for c in contacts or [] if isinstance(c, dict) and c.get("id") is not None]
    main = next((c for c in items if c.get("is_main")), items[0] if items else None)
    return str(main["id"]) if main else None


def custom_value(field: Mapping[str, Any], zone: ZoneInfo) -> Any:
    """A custom field's value: enum ids for list fields (the mapping's ``values`` translate
    them), ISO dates for date fields, a list for multi-value fields, else the value."""
    kind = field.get("field_type")
    values = [v for v in field.get("values") or [] if isinstance(v, dict)]
    if kind in ENUM_TYPES:
        out = [str(v.get("enum_id", v.get("value"))) for v in values]
    elif kind in DATE_TYPES:
        out = [iso(v.get("value"), zone) for v in values]
    else:
        out = [v.get("value") for v in values]
    if kind in MULTI_TYPES or len(out) > 1:
        return out
    return out[0] if out else None


def custom_write(field_id: int, kind: str | None, value: Any) -> dict[str, Any]:
    """One ``custom_fields_values`` item to write (D:crm_platform/custom-fields «Примеры
    заполнения»): ``{"field_id", "values": [...]}``; an empty value clears the field."""
    if value in (None, "", []):
        return {"field_id": field_id, "values": None}
    items = value if isinstance(value, list | tuple) else [value]
    return {"field_id": field_id, "values": [_one_value(kind, v) for v in items]}


def _one_value(kind: str | None, value: Any) -> dict[str, Any]:
    if kind in ENUM_TYPES:
        text = str(value)
        return {"enum_id": int(text)} if text.isdigit() else {"value": text}
    if kind in DATE_TYPES:
        return {"value": unix(value)}
    if kind == "checkbox":
        return {"value": str(value).lower() in ("1", "true", "yes")}
    return {"value": value if isinstance(value, int | float) else str(value)}


def unix(value: Any) -> int:
    """A datetime, an ISO text or a number as unix seconds (what amoCRM dates take)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, int | float):
        return int(value)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise PermanentError(f"{value!r} is not a date") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def top_level(code: str, value: Any) -> Any:
    """A standard lead field's value in the type the PATCH wants.

    Raises:
        PermanentError: the field is read-only or the value does not fit.
    """
    cast = WRITABLE.get(code)
    if cast is None:
        raise PermanentError(f"amoCRM lead field {code!r} cannot be written")
    try:
        return cast(float(value)) if cast is int else cast(value)
    except (TypeError, ValueError):
        raise PermanentError(f"{value!r} does not fit lead field {code!r}") from None


def kind_of(mapping: Mapping, pipeline_id: Any) -> str:
    """The canonical kind of a lead in ``pipeline_id`` (``lead`` or ``deal``)."""
    for kind in ("lead", "deal"):
        if str(pipeline_id) in mapping.kind(kind).pipelines:
            return kind
    return DEFAULT_KIND
