"""``bridge dry-run EVENT.json``: the plan for one event, without acting.

The JSON names a tenant and a record (``{"tenant": "remarka", "kind": "deal", "id": "42",
"type": "record.updated"}``); the record is read from the CRM and compared with the journal's
snapshot, exactly as the pipeline would, but nothing is written anywhere. With ``"record"``
(and optionally ``"previous"``) in the JSON, no CRM is read at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge import clock, config, crms
from bridge.crms.connector import Connector
from bridge.journal import Journal
from bridge.models import Event, Plan, Record, RecordRef
from bridge.pipeline import plan_for, stage_since, stay_of
from bridge.regulations.engine import Facts


def dry_run(data: dict[str, Any]) -> str:
    """The readable plan for an event description."""
    settings = config.load(data.get("config"))
    return describe(plan(settings.tenants[data["tenant"]], data))


def plan(
    tenant: config.Tenant,
    data: dict[str, Any],
    connector: Connector | None = None,
    journal: Journal | None = None,
) -> Plan:
    """The plan for an event description (the admin pages' "try a rule" too).

    Args:
        connector: reads the record when ``data`` gives none (default: a new one).
        journal: holds the record's last snapshot (default: ``BRIDGE_JOURNAL_URL``'s).
    """
    at = datetime.fromisoformat(data["at"]) if data.get("at") else clock.utcnow()
    kind, record_id = data.get("kind", "deal"), str(data.get("id", "1"))
    event = Event(
        tenant.name,
        tenant.config.crm,
        data.get("type", "record.updated"),
        RecordRef(kind, record_id),
        at,
    )
    if "record" in data:
        record = Record.from_dict(
            {"kind": kind, "id": record_id, "crm": tenant.config.crm, **data["record"]}
        )
        previous = Record.from_dict(data["previous"]) if data.get("previous") else None
        return plan_for(tenant, event, record, previous, "1")
    conn = connector or crms.get(tenant.config.crm).connector_class()(tenant)
    return _from_crm(tenant, event, conn, journal or Journal())


def _from_crm(tenant: config.Tenant, event: Event, conn: Connector, journal: Journal) -> Plan:
    record = conn.fetch(event.ref)
    snap = journal.snapshot(tenant.name, record.kind, record.id)
    previous = Record.from_dict(snap.data) if snap else None
    facts = Facts(stage_since=stage_since(snap, record, event.received_at))
    return plan_for(tenant, event, record, previous, stay_of(snap, record), facts)


def describe(plan: Plan) -> str:
    """A plan as lines: every rule's verdict, then the actions and timers."""
    lines = [f"rule {d.rule}: {d.verdict} ({d.detail})" for d in plan.decisions]
    lines += [f"would {a.kind}: {a.describe()}" for a in plan.actions]
    lines += [f"would set timer {t.rule} step {t.step} at {t.due.isoformat()}" for t in plan.timers]
    if not plan.actions and not plan.timers:
        lines.append("nothing to do")
    return "\n".join(lines)
