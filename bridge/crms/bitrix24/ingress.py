"""Bitrix24 outgoing webhooks: ``POST /hooks/bitrix24/<tenant>``.

Wire format (D:api-reference/events/index.md, D:local-integrations/local-webhooks.md):
form-encoded, PHP bracket keys (``data[FIELDS][ID]``, ``auth[application_token]``), every
value a string, only the entity's id in ``data``. Authenticity: ``auth[application_token]``
equals the token shown in the outgoing webhook's settings; there is no signature.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bridge.crms.bitrix24 import Bitrix24
from bridge.crms.receive import Incoming, Rejected, find_tenant, gate, number, read_form
from bridge.errors import ConfigError
from bridge.formdata import clip

bp = Blueprint("ingress_bitrix24", __name__)

# event name (upper case; names arrive in any case) -> (event type, record kind)
EVENTS = {
    "ONCRMDEALADD": ("record.created", "deal"),
    "ONCRMDEALUPDATE": ("record.updated", "deal"),
    "ONCRMLEADADD": ("record.created", "lead"),
    "ONCRMLEADUPDATE": ("record.updated", "lead"),
    "ONCRMACTIVITYADD": ("activity.created", "activity"),
    # a call or meeting marked done, a deadline moved: data[FIELDS][ID] is the activity's id
    # (D:api-reference/crm/timeline/activities/events/on-crm-activity-update.md; RU:
    # https://dev.1c-bitrix.ru/rest_help/crm/rest_activity/events_business/on_Crm_Activity_Update.php)
    "ONCRMACTIVITYUPDATE": ("activity.updated", "activity"),
}
REQUIRED = ("event", "data[FIELDS][ID]", "ts", "auth[application_token]")


@bp.post("/hooks/bitrix24/<tenant>")
def receive(tenant: str) -> ResponseReturnValue:
    """Authenticate, parse, deduplicate, journal and enqueue one Bitrix24 event."""
    try:
        item = parse(tenant, read_form())
    except Rejected as error:
        return gate().reject(tenant, Bitrix24.name, error)
    entry, status = gate().accept(item)
    return jsonify(status=status, entry=entry), 200


def parse(tenant: str, body: dict[str, Any]) -> Incoming:
    """Turn a decoded form body into an :class:`Incoming`, or raise :class:`Rejected`."""
    _authenticate(tenant, body)
    try:
        return _event(tenant, body)
    except Rejected as error:
        error.trusted = True  # it came with the tenant's token: the CRM itself sent it
        raise


def _event(tenant: str, body: dict[str, Any]) -> Incoming:
    payload = _journal_payload(body)
    for key in REQUIRED:
        if _dig(body, key) in (None, ""):
            raise Rejected(400, f"missing {key}", payload)
    name = str(body["event"]).upper()
    if name not in EVENTS:
        handled = ", ".join(EVENTS)
        raise Rejected(
            422, f"event {clip(name, 40)} is not handled; subscribe to {handled}", payload
        )
    try:
        entity_id = number(_dig(body, "data[FIELDS][ID]"), "data[FIELDS][ID]")
        ts = number(body["ts"], "ts")  # a Unix time (D:api-reference/events/index.md)
    except Rejected as error:
        error.payload = payload
        raise
    return _incoming(tenant, name, entity_id, ts, payload)


def _incoming(tenant: str, name: str, entity_id: str, ts: str, payload: dict) -> Incoming:
    type_, kind = EVENTS[name]
    activity = kind == "activity"
    return Incoming(
        tenant=tenant,
        crm=Bitrix24.name,
        source=name,
        type=type_,
        kind="" if activity else kind,
        record_id="" if activity else entity_id,
        subject=entity_id if activity else None,
        # Bitrix24 stamps `ts` when the event leaves its queue: a re-delivery repeats it
        dedup_key=f"b24:{name}:{entity_id}:{ts}",
        payload=payload,
    )


def _authenticate(tenant: str, body: dict[str, Any]) -> None:
    found = find_tenant(tenant, Bitrix24.name, Bitrix24.title)
    given = _dig(body, "auth[application_token]")
    if not given:
        raise Rejected(401, "missing auth[application_token]", _journal_payload(body))
    try:
        expected = found.secret("application_token")
    except ConfigError as exc:
        raise Rejected(503, str(exc), trusted=True) from None
    if not hmac.compare_digest(str(given).encode(), expected.encode()):
        raise Rejected(403, "auth[application_token] does not match the tenant's token")


def _journal_payload(body: dict[str, Any]) -> dict[str, Any]:
    # keep what explains the call, never the token; only the id of data (all a portal sends),
    # each value clipped: the rest of a stranger's body would only fill the journal
    auth = body.get("auth") if isinstance(body.get("auth"), dict) else {}
    entity_id = _dig(body, "data[FIELDS][ID]")
    return {
        "event": _value(body.get("event")),
        "data": {"FIELDS": {"ID": _value(entity_id)}} if entity_id is not None else None,
        "ts": _value(body.get("ts")),
        "auth": {k: _value(auth.get(k)) for k in ("domain", "member_id") if k in auth},
    }


def _value(value: Any) -> str | None:
    if value is None:
        return None
    return "[...]" if isinstance(value, dict) else clip(str(value), 80)


def _dig(body: dict[str, Any], key: str) -> Any:
    node: Any = body
    for part in key.replace("]", "").split("["):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
