"""amoCRM's past for a backtest: stage moves from the events feed, the leads around them.

``GET /api/v4/events`` with ``filter[type][]=lead_status_changed``, ``filter[entity]`` and
``filter[created_at][from]`` (at most 100 a page); each event's ``value_after`` /
``value_before`` hold ``{"lead_status": {"id", "pipeline_id"}}`` (reference §2.9,
https://www.amocrm.ru/developers/content/crm_platform/events-and-notes). Read only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bridge.crms.connector import Step

if TYPE_CHECKING:
    from bridge.crms.amocrm.connector import AmoCRMConnector

EVENTS_PAGE = 100  # the largest page of the events feed (reference §2.0)
LEADS_PAGE = 250


def steps(conn: AmoCRMConnector, kind: str, since: datetime) -> Iterator[Step]:
    """The moves of leads of ``kind`` since a moment, oldest first.

    A lead created since ``since`` starts at its ``created_at`` in the stage its first move
    left (or the one it still stands in); the other fields are the lead's current ones.
    """
    moment = int(since.timestamp())
    params = {
        "filter[type][]": "lead_status_changed",
        "filter[entity]": "lead",
        "filter[created_at][from]": moment,
        "limit": EVENTS_PAGE,
    }
    moves = sorted(conn.api.pages("/api/v4/events", params, "events"), key=_event_order)
    created = {str(r["id"]): r for r in conn.leads({"filter[created_at][from]": moment})}
    ids = sorted({str(e["entity_id"]) for e in moves} - set(created), key=int)
    leads = {**created, **_by_ids(conn, ids)}
    found = [s for s in _steps(conn, moves, leads, created) if s.record.kind == kind]
    yield from sorted(found, key=lambda s: s.at)


def _steps(
    conn: AmoCRMConnector,
    moves: list[dict[str, Any]],
    leads: dict[str, dict[str, Any]],
    created: dict[str, dict[str, Any]],
) -> Iterator[Step]:
    first: dict[str, dict[str, Any]] = {}
    for move in moves:
        lead = leads.get(str(move["entity_id"]))
        if lead is None:
            continue  # deleted since: nothing to judge it by
        first.setdefault(str(lead["id"]), move)
        yield _step(conn, lead, move["value_after"], move["created_at"], False)
    for lead_id, lead in created.items():
        start = first.get(lead_id, {}).get("value_before")
        yield _step(conn, lead, start, lead["created_at"], True)


def _step(conn: AmoCRMConnector, lead: dict[str, Any], value: Any, at: int, new: bool) -> Step:
    status = value[0].get("lead_status") if value else None
    then = dict(lead)
    if status:
        then.update(status_id=status["id"], pipeline_id=status["pipeline_id"])
    return Step(datetime.fromtimestamp(int(at), UTC), conn.to_record(then), new)


def _by_ids(conn: AmoCRMConnector, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), LEADS_PAGE):
        chunk = ids[start : start + LEADS_PAGE]
        found.update({str(r["id"]): r for r in conn.leads({"filter[id][]": chunk})})
    return found


def _event_order(event: dict[str, Any]) -> tuple[int, str]:
    return int(event["created_at"]), str(event["id"])
