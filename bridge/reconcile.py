"""Reconciliation: ask the CRM what changed, and feed what the bridge never heard of.

Bitrix24 never sends a webhook again, and amoCRM gives up after a few tries: a change whose
webhook was lost would never meet the regulations. So, per tenant and every
``reconcile_every``, the bridge asks its CRM for the records changed since the last time
(Bitrix24: ``crm.<kind>.list`` by ``>DATE_MODIFY``; amoCRM: leads by ``updated_at``) and
compares each with the snapshot the bridge keeps: a record whose ``modified_at``, stage or
outcome differs from the snapshot's (or that has none) is put in the tenant's stream as an
update, exactly as its webhook would have been. A record already processed is left alone, and
so is one with an event still waiting, in the stream or in the journal (an event carries only
an id: the record is read as it is when its turn comes); one whose webhook arrives meanwhile
is processed twice without effect (the actions' keys).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bridge import clock
from bridge.crms.receive import Incoming
from bridge.ingress import fields_of
from bridge.models import Record
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=2)
"""Asked again of the last run's window: clocks differ, and a change may land as it ends."""
FIRST_LOOK = timedelta(hours=1)
"""How far back the first run looks."""
MODIFIED = "modified_at"
"""The canonical field a record's last change is read from (both CRMs' default mappings)."""


def reconcile(rt: Runtime, tenant_name: str) -> str:
    """Feed the changes the bridge never heard of; returns a summary."""
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        return f"tenant {tenant_name!r} is not configured"
    conn = rt.connector(tenant)
    now, since = clock.utcnow(), _since(rt, tenant_name)
    seen = fed = 0
    for kind in tenant.mapping.kinds:
        changed = conn.changed_since(kind, since - OVERLAP)
        if changed is None:
            return f"{tenant.config.crm} cannot say what changed"
        records = list(changed)
        seen += len(records)
        fed += _feed(rt, tenant_name, tenant.config.crm, records)
    mark(rt, tenant_name, now)
    summary = f"{seen} record(s) changed since {since:%Y-%m-%d %H:%M}, {fed} never heard of"
    if fed:
        log.warning("%s: fed %d change(s) whose webhook never came", tenant_name, fed)
    return summary


def _feed(rt: Runtime, tenant: str, crm: str, records: list[Record]) -> int:
    refs = [(r.kind, r.id) for r in records]
    snaps = rt.journal.snapshots_of(tenant, refs)
    pending = rt.journal.pending_of(tenant, refs) | rt.queue.waiting_records(tenant)
    fed = 0
    for record in records:
        snap = snaps.get((record.kind, record.id))
        stamp = record.fields.get(MODIFIED)
        if snap is not None and _seen(snap.data, record):
            continue  # the bridge saw this very version
        if (record.kind, record.id) in pending:
            continue  # an event of it waits, and will read it as it is then
        item = Incoming(
            tenant=tenant,
            crm=crm,
            source="reconcile",
            type="record.updated",
            kind=record.kind,
            record_id=record.id,
            dedup_key=f"reconcile:{record.kind}:{record.id}:{stamp}",
            payload={"modified_at": str(stamp)},
        )
        fed += rt.queue.admit(tenant, item.dedup_key, fields_of(item)) is not None
    return fed


def _seen(data: dict, record: Record) -> bool:
    """Is the snapshot this version of the record? Its stamp, stage and outcome agree (a
    stamp alone can repeat: amoCRM's ``updated_at`` counts seconds)."""
    same = (data.get("fields") or {}).get(MODIFIED) == record.fields.get(MODIFIED)
    return same and data.get("stage") == record.stage and data.get("outcome") == record.outcome


def mark(rt: Runtime, tenant: str, when: datetime) -> None:
    """Record that the tenant's CRM was asked up to ``when``: the next run asks from there."""
    rt.redis.set(_key(tenant), when.isoformat())


def _since(rt: Runtime, tenant: str) -> datetime:
    stored = rt.redis.get(_key(tenant))
    return datetime.fromisoformat(stored.decode()) if stored else clock.utcnow() - FIRST_LOOK


def _key(tenant: str) -> str:
    return f"bridge:reconciled:{tenant}"
