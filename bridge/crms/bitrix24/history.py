"""Bitrix24's past for a backtest: ``crm.stagehistory.list``, the records around it.

Items carry TYPE_ID (1 created, 2 moved to an intermediate stage, 3 moved to a final one),
OWNER_ID, CREATED_TIME and the stage with its semantics: STAGE_ID / STAGE_SEMANTIC_ID for
deals, STATUS_ID / STATUS_SEMANTIC_ID for leads (D:api-reference/crm/crm-stage-history-list.md;
the older page: https://dev.1c-bitrix.ru/rest_help/crm/stagehistory.php). Read only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.crms.bitrix24.records import bitrix_record
from bridge.crms.connector import Step

if TYPE_CHECKING:
    from bridge.crms.bitrix24.connector import Bitrix24Connector

ENTITY_TYPE = {"lead": 1, "deal": 2}
STAGE_KEYS = {
    "deal": ("STAGE_ID", "STAGE_SEMANTIC_ID"),
    "lead": ("STATUS_ID", "STATUS_SEMANTIC_ID"),
}
IDS_PER_PAGE = 50


def steps(conn: Bitrix24Connector, kind: str, since: datetime) -> Iterator[Step]:
    """The stage moves of records of ``kind`` since a moment, oldest first.

    The records are read with ``crm.<kind>.list`` by ``@ID``, 50 ids a page; each step is the
    record with the stage of that moment and its current other fields.
    """
    params = {
        "entityTypeId": ENTITY_TYPE[kind],
        "filter": {">=CREATED_TIME": since.isoformat(timespec="seconds")},  # with its offset
    }  # no `order`: fast-bitrix24's get_all pages by ID itself; sorted by time below
    items = sorted(
        conn.get_all("crm.stagehistory.list", params),
        key=lambda i: (datetime.fromisoformat(i["CREATED_TIME"]), int(i["ID"])),
    )
    current = _by_ids(conn, kind, sorted({str(i["OWNER_ID"]) for i in items}))
    stage, semantic = STAGE_KEYS[kind]
    for item in items:
        raw = current.get(str(item["OWNER_ID"]))
        if raw is None:
            continue  # deleted since: nothing to judge it by
        then = {**raw, stage: item.get(stage), semantic: item.get(semantic)}
        record = bitrix_record(kind, then, conn.mapping, conn.name, raw["ID"])
        at = datetime.fromisoformat(item["CREATED_TIME"])
        yield Step(at, record, str(item["TYPE_ID"]) == "1")


def _by_ids(conn: Bitrix24Connector, kind: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), IDS_PER_PAGE):
        params = {"filter": {"@ID": ids[start : start + IDS_PER_PAGE]}, "select": ["*", "UF_*"]}
        found.update({str(r["ID"]): r for r in conn.get_all(f"crm.{kind}.list", params)})
    return found
