"""Ingress: the gate every CRM's receiver hands its parsed calls to.

A receiver (``bridge/crms/<name>/ingress.py``) authenticates and parses the CRM's wire format;
the gate folds duplicates and queues the event, in one Redis round trip, and the receiver
answers in milliseconds. It never calls the CRM, and never answers 200 for an event it may
lose.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import jsonify
from flask.typing import ResponseReturnValue

from bridge import clock, metrics
from bridge.config import Tenant
from bridge.crms.receive import Incoming, Rejected
from bridge.formdata import clip
from bridge.lockout import Lockout
from bridge.masking import redact
from bridge.runtime import Runtime
from bridge.spool import Spool

log = logging.getLogger(__name__)


class Gate:
    """Queues what the receivers parse (``app.extensions["bridge.gate"]``).

    One Redis round trip per event: the queue's admission script folds a delivery whose key
    still waits, appends the event to its tenant's stream and wakes a worker. The event is
    journaled by the worker that takes it. While Redis is down the event goes to the local
    spool, fsynced, and is answered 200 all the same; if the spool fails too, 503.
    """

    def __init__(self, rt: Runtime, spool: Spool | None = None) -> None:
        self.rt = rt
        self.spool = spool or Spool()

    def tenant(self, name: str) -> Tenant | None:
        """A configured tenant by name, or None."""
        return self.rt.tenant(name)

    def reject(self, tenant: str, crm: str, error: Rejected) -> ResponseReturnValue:
        """Answer a refused call with its 4xx and reason.

        A call that proved to come from the tenant's CRM (``trusted``) is journaled row by
        row; a stranger's (a wrong secret, garbage) is counted in
        ``bridge_events_received_total{result="rejected"}`` and journaled and logged once a
        minute per tenant (:data:`SAMPLE_SECONDS`), so that nobody can fill the journal's disk
        or the log by posting garbage.
        """
        metrics.EVENTS.labels(crm, "rejected").inc()
        if error.trusted or self._sampled(tenant, crm):
            name = clip(tenant, TENANT_LENGTH)
            log.warning("rejected %s call for %s: %s", crm, redact(name), redact(error.reason))
            self.rt.journal.record_event(
                tenant=name,
                crm=crm,
                status="rejected",
                reason=redact(error.reason),
                payload=error.payload,
                received_at=clock.utcnow(),
            )
        response = jsonify(error="rejected", reason=error.reason)
        return response, error.status

    def lockout(self, scope: str, max_failures: int, minutes: int) -> Lockout:
        """The failed logins of a scope, counted in the runtime's Redis."""
        return Lockout(self.rt.redis, scope, max_failures, minutes)

    def _sampled(self, tenant: str, crm: str) -> bool:
        # names nobody configured share one sample: a stranger inventing them gets no more rows
        bucket = tenant if self.rt.tenant(tenant) is not None else "?"
        key = f"bridge:rejected:{crm}:{bucket}"
        try:
            return bool(self.rt.redis.set(key, 1, nx=True, ex=SAMPLE_SECONDS))
        except redis.RedisError:
            return False

    def accept(self, item: Incoming) -> tuple[str | None, str]:
        """Queue one event; returns its entry id (None unless queued) and ``queued``,
        ``duplicate`` or ``spooled``.

        A delivery whose key was seen is dropped only while the first one still waits in the
        queue: that one will read the record's latest state anyway. Once the first is taken by
        a worker, the same key may stand for a later change (Bitrix24's ``ts`` has one-second
        resolution), so it is processed again; the actions' idempotency keys make that
        harmless.

        Raises:
            Unavailable: neither Redis nor the spool could keep the event.
        """
        fields = fields_of(item)
        try:
            entry = self.rt.queue.admit(item.tenant, item.dedup_key, fields)
        except redis.RedisError as exc:
            log.error("Redis unreachable (%s): spooling %s", type(exc).__name__, item.source)
            try:
                self.spool.keep(item.tenant, item.dedup_key, fields)
            except OSError as spool_error:
                raise Unavailable(f"the queue and the spool both failed: {spool_error}") from exc
            metrics.EVENTS.labels(item.crm, "spooled").inc()
            return None, "spooled"
        status = "queued" if entry else "duplicate"
        metrics.EVENTS.labels(item.crm, status).inc()
        return entry, status

    def replay_spool(self, tenant: str, key: str, fields: dict[str, Any]) -> None:
        """Admit one spooled event (the spool's replayer calls this)."""
        self.rt.queue.admit(tenant, key, fields)


SAMPLE_SECONDS = 60
"""A stranger's refused calls are journaled at most once in this many seconds per tenant."""
TENANT_LENGTH = 64
"""A tenant name as a refused call's URL gives it is journaled cut to this length."""


class Unavailable(Exception):
    """Nothing could keep an event now: answer 503 with Retry-After, never 200."""


RETRY_AFTER = 30
"""Seconds a CRM is asked to wait before posting again when nothing could keep its event."""


def unavailable(error: Unavailable) -> ResponseReturnValue:
    """The answer when an event could not be kept: the CRM will post it again."""
    log.error("answering 503: %s", error)
    response = jsonify(error="unavailable", reason="the bridge cannot keep events right now")
    return response, 503, {"Retry-After": str(RETRY_AFTER)}


def fields_of(item: Incoming) -> dict[str, Any]:
    """An event as its stream entry carries it (ids and names only)."""
    return {
        "k": "event",
        "crm": item.crm,
        "source": item.source,
        "type": item.type,
        "kind": item.kind,
        "record_id": item.record_id,
        "subject": item.subject or "",
        "dedup": item.dedup_key,
        "payload": item.payload,
        "at": clock.utcnow().isoformat(),
    }
