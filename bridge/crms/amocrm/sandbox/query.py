"""Query strings of the amoCRM sandbox's list methods: filters, order, page/limit, ``_links``.

https://www.amocrm.ru/developers/content/crm_platform/filters-api and the list sections of the
entity pages (reference §2.0, §2.5, §2.9): ``filter[id][]=1``, ``filter[x][from|to]``,
``filter[statuses][0][pipeline_id|status_id]``, ``order[field]=asc|desc``, ``page``, ``limit``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from bridge.crms.amocrm.sandbox.data import DEFAULT_LIMIT, ApiError, problem
from bridge.formdata import FormKeyError, as_list, parse_pairs

Record = Mapping[str, Any]


def parse_args(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest query pairs; a malformed bracket key is dropped rather than failing the call."""
    kept: list[tuple[str, str]] = []
    for pair in pairs:
        try:
            parse_pairs([*kept, pair])
        except FormKeyError:
            continue
        kept.append(pair)
    return parse_pairs(kept)


def values(raw: Any) -> list[str]:
    """``filter[id]=1``, ``filter[id][]=1&filter[id][]=2`` or ``filter[id]=1,2`` as strings."""
    if raw is None:
        return []
    out: list[str] = []
    for item in as_list(raw):
        if isinstance(item, str):
            out += [p.strip() for p in item.split(",") if p.strip()]
    return out


def ints(raw: Any) -> list[int] | None:
    """Integer filter values, ``None`` when the filter is absent."""
    if raw is None:
        return None
    return [int(v) for v in values(raw) if v.lstrip("-").isdigit()]


def in_range(value: Any, raw: Any) -> bool:
    """``filter[x][from]``/``[to]`` (inclusive); a bare value means equality."""
    if raw is None:
        return True
    if value is None:
        return False
    if not isinstance(raw, Mapping):
        wanted = ints(raw) or []
        return value in wanted
    low, high = ints(raw.get("from")), ints(raw.get("to"))
    return (not low or value >= low[0]) and (not high or value <= high[0])


def page_limit(params: Mapping[str, Any], maximum: int) -> tuple[int, int]:
    """``page`` (from 1) and ``limit``.

    Raises:
        ApiError: 422 over the maximum (the Kommo status-code page's example, reference §3.1).
    """
    page = ints(params.get("page")) or [1]
    limit = ints(params.get("limit")) or [DEFAULT_LIMIT]
    if limit[0] > maximum:
        raise ApiError(422, problem(422, f"Limite de {maximum} por página"))
    return max(page[0], 1), max(limit[0], 1)


def order(items: list[Record], params: Mapping[str, Any], allowed: tuple[str, ...]) -> list:
    """Apply ``order[field]=asc|desc`` for one of ``allowed`` fields (else id order)."""
    spec = params.get("order")
    if isinstance(spec, Mapping):
        for key, direction in spec.items():
            if key in allowed:
                reverse = str(direction).lower() == "desc"
                return sorted(
                    items, key=lambda r: (r.get(key) is None, r.get(key)), reverse=reverse
                )
    return items


def paginate(
    items: list[Record], params: Mapping[str, Any], maximum: int
) -> tuple[list[Record], int, bool]:
    """The requested page, its number and whether another follows."""
    page, limit = page_limit(params, maximum)
    start = (page - 1) * limit
    return items[start : start + limit], page, len(items) > start + limit


def links(
    base_url: str, path: str, pairs: list[tuple[str, str]], page: int, more: bool
) -> dict[str, Any]:
    """``_links.self`` and, when another page exists, ``_links.next`` (reference §2.0)."""

    def href(number: int) -> str:
        kept = [(k, v) for k, v in pairs if k != "page"]
        return f"{base_url}{path}?{urlencode([*kept, ('page', str(number))])}"

    out: dict[str, Any] = {"self": {"href": href(page)}}
    if more:
        out["next"] = {"href": href(page + 1)}
    return out


def _statuses_match(lead: Record, raw: Any) -> bool:
    if raw is None:
        return True
    for pair in as_list(raw):
        if isinstance(pair, Mapping):
            pipeline, status = ints(pair.get("pipeline_id")), ints(pair.get("status_id"))
            if (not pipeline or lead["pipeline_id"] == pipeline[0]) and (
                not status or lead["status_id"] == status[0]
            ):
                return True
    return False


def _member(value: Any, raw: Any) -> bool:
    wanted = ints(raw)
    return wanted is None or value in wanted


def lead_filter(filt: Mapping[str, Any]) -> Callable[[Record], bool]:
    """A predicate for GET /api/v4/leads ``filter[...]``."""

    def match(lead: Record) -> bool:
        return (
            _member(lead["id"], filt.get("id"))
            and _member(lead["responsible_user_id"], filt.get("responsible_user_id"))
            and _member(lead["pipeline_id"], filt.get("pipeline_id"))
            and _statuses_match(lead, filt.get("statuses"))
            and all(
                in_range(lead[key], filt.get(key))
                for key in ("created_at", "updated_at", "closed_at", "closest_task_at")
            )
        )

    return match


def task_filter(filt: Mapping[str, Any]) -> Callable[[Record], bool]:
    """A predicate for GET /api/v4/tasks ``filter[...]`` (reference §2.5)."""
    kinds = values(filt.get("entity_type"))
    done = values(filt.get("is_completed"))

    def match(task: Record) -> bool:
        return (
            _member(task["id"], filt.get("id"))
            and (not kinds or task["entity_type"] in kinds)
            and _member(task["entity_id"], filt.get("entity_id"))
            and (not done or int(task["is_completed"]) == int(done[0] in ("1", "true")))
            and _member(task["responsible_user_id"], filt.get("responsible_user_id"))
            and _member(task["task_type_id"], filt.get("task_type"))
            and in_range(task["updated_at"], filt.get("updated_at"))
            and in_range(task["complete_till"], filt.get("complete_till"))
        )

    return match


def note_filter(filt: Mapping[str, Any]) -> Callable[[Record], bool]:
    """A predicate for GET /api/v4/leads/notes ``filter[...]``."""
    types = values(filt.get("note_type"))

    def match(note: Record) -> bool:
        return (
            _member(note["id"], filt.get("id"))
            and _member(note["entity_id"], filt.get("entity_id"))
            and (not types or note["note_type"] in types)
            and in_range(note["updated_at"], filt.get("updated_at"))
        )

    return match


def event_filter(filt: Mapping[str, Any]) -> Callable[[Record], bool]:
    """A predicate for GET /api/v4/events ``filter[...]`` (reference §2.9)."""
    types, entities = values(filt.get("type")), values(filt.get("entity"))

    def match(event: Record) -> bool:
        return (
            (not types or event["type"] in types)
            and (not entities or event["entity_type"] in entities)
            and _member(event["entity_id"], filt.get("entity_id"))
            and _member(event["created_by"], filt.get("created_by"))
            and in_range(event["created_at"], filt.get("created_at"))
        )

    return match
