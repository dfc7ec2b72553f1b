"""Ingress: one receiver per CRM; what they share (reject, accept) lives here once.

A receiver authenticates, parses the CRM's wire format into an event, drops duplicates,
journals, enqueues the event id and answers in milliseconds. It never calls the CRM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from bridge import queue
from bridge.journal import utcnow
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A call the bridge refuses: answered with a 4xx and a JSON reason, and journaled."""

    def __init__(self, status: int, reason: str, payload: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.payload = status, reason, payload or {}


@dataclass(frozen=True)
class Incoming:
    """A parsed, authenticated call, ready to be journaled and queued."""

    tenant: str
    crm: str
    source: str
    type: str
    kind: str
    record_id: str
    dedup_key: str
    payload: dict[str, Any]
    subject: str | None = None


def runtime() -> Runtime:
    """The runtime of this app."""
    return current_app.extensions["bridge"]


def reject(tenant: str, crm: str, error: Rejected) -> ResponseReturnValue:
    """Journal a refused call and answer it with its 4xx and reason."""
    runtime().journal.record_event(
        tenant=tenant, crm=crm, status="rejected", reason=error.reason, payload=error.payload
    )
    log.warning("rejected %s call for %s: %s", crm, tenant, error.reason)
    return jsonify(error="rejected", reason=error.reason), error.status


def accept(item: Incoming) -> ResponseReturnValue:
    """Journal and enqueue an event, or fold it into an identical one still waiting."""
    event_id, status = enqueue(item)
    return jsonify(status=status, event_id=event_id), 200


def enqueue(item: Incoming) -> tuple[int, str]:
    """Journal and enqueue one event; returns its id and ``queued`` or ``duplicate``.

    A delivery whose key was seen is dropped only while the first one still waits in the
    queue: that job will read the record's latest state anyway. Once the first has started,
    the same key may stand for a later change (Bitrix24's ``ts`` has one-second resolution),
    so it is processed again; the actions' idempotency keys make that harmless.
    """
    rt = runtime()
    values = {k: getattr(item, k) for k in ("tenant", "crm", "source", "type", "kind", "subject")}
    values.update(record_id=item.record_id, payload=item.payload, received_at=utcnow())
    key: str | None = item.dedup_key
    if not queue.first_delivery(rt.redis, item.tenant, item.dedup_key):
        first = rt.journal.event_by_key(item.tenant, item.dedup_key)
        if first is None or first.status in ("queued", "retrying"):
            event_id, _ = rt.journal.record_event(**values, status="duplicate")
            return event_id, "duplicate"
        key = None  # a later change within the same second: process it again
    try:
        event_id, _ = rt.journal.record_event(**values, status="queued", dedup_key=key)
        intervals = rt.settings.tenants[item.tenant].config.retry_intervals
        queue.enqueue_event(rt.redis, item.tenant, event_id, intervals)
    except Exception:
        if key is not None:
            queue.forget_delivery(rt.redis, item.tenant, item.dedup_key)
        raise
    return event_id, "queued"
