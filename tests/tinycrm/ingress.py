"""TinyCRM's webhooks: ``POST /hooks/tinycrm/<tenant>/<token>``, form ``event``, ``deal_id``,
``at``. The receiver authenticates and parses; the gate journals and queues."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from bridge.crms.receive import Incoming, Rejected, find_tenant, gate
from tests.tinycrm import TinyCRM

bp = Blueprint("ingress_tinycrm", __name__)
EVENTS = {"deal.created": "record.created", "deal.changed": "record.updated"}


@bp.post("/hooks/tinycrm/<tenant>/<token>")
def receive(tenant: str, token: str) -> ResponseReturnValue:
    """Authenticate, parse and hand one event to the gate."""
    try:
        item = parse(tenant, token, request.form)
    except Rejected as error:
        return gate().reject(tenant, TinyCRM.name, error)
    event_id, status = gate().accept(item)
    return jsonify(status=status, event_id=event_id), 200


def parse(tenant: str, token: str, form: dict) -> Incoming:
    """One webhook as an :class:`Incoming`, or :class:`Rejected`."""
    found = find_tenant(tenant, TinyCRM.name, TinyCRM.title)
    if not hmac.compare_digest(token.encode(), found.secret("hook_token").encode()):
        raise Rejected(403, "the token in the hook's URL does not match the tenant's")
    event, deal_id, at = form.get("event", ""), form.get("deal_id", ""), form.get("at", "")
    if event not in EVENTS or not deal_id.isdigit():
        raise Rejected(400, f"expected event in {sorted(EVENTS)} and a numeric deal_id")
    return Incoming(
        tenant=tenant,
        crm=TinyCRM.name,
        source=event,
        type=EVENTS[event],
        kind="deal",
        record_id=deal_id,
        dedup_key=f"tiny:{event}:{deal_id}:{at}",
        payload={"event": event, "deal_id": deal_id},
    )
