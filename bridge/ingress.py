"""Ingress: the gate every CRM's receiver hands its parsed calls to.

A receiver (``bridge/crms/<name>/ingress.py``) authenticates and parses the CRM's wire format;
the gate drops duplicates, journals, enqueues the event id and answers in milliseconds. It
never calls the CRM.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from bridge import clock, metrics, queue
from bridge.config import Tenant
from bridge.crms.receive import Incoming, Rejected
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


class Gate:
    """Journals and queues what the receivers parse (``app.extensions["bridge.gate"]``)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def tenant(self, name: str) -> Tenant | None:
        """A configured tenant by name, or None."""
        return self.rt.tenant(name)

    def reject(self, tenant: str, crm: str, error: Rejected) -> ResponseReturnValue:
        """Journal a refused call and answer it with its 4xx and reason."""
        self.rt.journal.record_event(
            tenant=tenant, crm=crm, status="rejected", reason=error.reason, payload=error.payload
        )
        log.warning("rejected %s call for %s: %s", crm, tenant, error.reason)
        metrics.EVENTS.labels(crm, "rejected").inc()
        return jsonify(error="rejected", reason=error.reason), error.status

    def accept(self, item: Incoming) -> tuple[int, str]:
        """Journal and enqueue one event; returns its id and ``queued`` or ``duplicate``.

        A delivery whose key was seen is dropped only while the first one still waits in the
        queue: that job will read the record's latest state anyway. Once the first has
        started, the same key may stand for a later change (Bitrix24's ``ts`` has one-second
        resolution), so it is processed again; the actions' idempotency keys make that
        harmless.
        """
        rt = self.rt
        values: dict[str, Any] = {
            k: getattr(item, k) for k in ("tenant", "crm", "source", "type", "kind", "subject")
        }
        values.update(record_id=item.record_id, payload=item.payload, received_at=clock.utcnow())
        key: str | None = item.dedup_key
        if not queue.first_delivery(rt.redis, item.tenant, item.dedup_key):
            first = rt.journal.event_by_key(item.tenant, item.dedup_key)
            if first is None or first.status in ("queued", "retrying"):
                event_id, _ = rt.journal.record_event(**values, status="duplicate")
                metrics.EVENTS.labels(item.crm, "duplicate").inc()
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
        metrics.EVENTS.labels(item.crm, "queued").inc()
        return event_id, "queued"
