"""Broadcasts: one rule run once over every record of its kinds, open and closed alike.

"New products or services: inform every client or client group by a mailing" (G4) is no
event of any record: the head of sales decides when. ``bridge broadcast <tenant> <rule>``
lists every record of the rule's kinds through the connector (won and lost ones too), judges
the rule on each with the event ``broadcast`` (its ``if`` names the client group), and counts
the clients it would reach; with ``--send`` it acts, a batch at a time, one client once (the
first of a client's records, by ``contact_id``). The actions carry the usual idempotency keys
and the journal keeps the run as one event, so a repeated run sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from bridge import clock
from bridge.config import Tenant
from bridge.errors import ConfigError
from bridge.execute import Item
from bridge.models import Event, Record
from bridge.pipeline import stay_of, tenant_context
from bridge.regulations.engine import evaluate
from bridge.regulations.pack import Rule
from bridge.runtime import Runtime
from bridge.sweeps import execute_batched, plan_record

SOURCE = "broadcast"


@dataclass
class Outcome:
    """What a broadcast found (and did): records listed, clients it reaches, records acted on."""

    listed: int = 0
    clients: int = 0
    records: list[str] = field(default_factory=list)
    sent: bool = False

    def summary(self) -> str:
        """One line for the operator."""
        verb = "informed" if self.sent else "would inform"
        line = f"{self.listed} record(s) listed; {verb} {self.clients} client(s)"
        return line if self.sent else f"{line}; nothing sent (run again with --send)"


def broadcast_rules(tenant: Tenant) -> list[Rule]:
    """The tenant's rules that run only as broadcasts."""
    return [rule for rule in tenant.rules if SOURCE in rule.when.event]


def run(rt: Runtime, tenant_name: str, rule_id: str, *, send: bool = False) -> Outcome:
    """Judge a broadcast rule on every record of its kinds; act only when ``send``.

    Raises:
        ConfigError: no such tenant, or the rule is no broadcast rule of it (the message
            lists the ones there are).
    """
    tenant, rule = _rule(rt, tenant_name, rule_id)
    outcome = Outcome(sent=send)
    now = clock.utcnow()
    event_id = None
    if send:
        event_id, _ = rt.journal.record_event(
            tenant=tenant.name,
            crm=tenant.config.crm,
            source=SOURCE,
            type=SOURCE,
            status="processing",
            received_at=now,
        )
    if not send:
        for record in _clients(rt, tenant, rule, outcome):
            outcome.clients += _acts(tenant, rule, record, now)
        return outcome
    assert event_id is not None
    snaps: dict[str, dict] = {}  # a kind's snapshots, read once, not once per record

    def planned() -> Iterator[list[Item]]:
        for record in _clients(rt, tenant, rule, outcome):
            if record.kind not in snaps:
                snaps[record.kind] = rt.journal.snapshots(tenant.name, record.kind)
            snap = snaps[record.kind].get(record.id)
            items = plan_record(rt, tenant, [rule], event_id, record, snap, now, SOURCE)
            if items:
                outcome.clients += 1
                outcome.records.append(str(record.ref))
            yield items

    execute_batched(rt, tenant, planned())
    rt.journal.finish_event(event_id, "processed", outcome.summary())
    return outcome


def _clients(rt: Runtime, tenant: Tenant, rule: Rule, outcome: Outcome) -> Iterator[Record]:
    """Every record of the rule's kinds, the first one of each client only."""
    seen: set[str] = set()
    connector = rt.connector(tenant)
    for kind in rule.when.kind or ["deal"]:
        for record in connector.list_all(kind):
            outcome.listed += 1
            client = record.fields.get("contact_id")
            if client not in (None, "", "0", 0):
                if str(client) in seen:
                    continue
                seen.add(str(client))
            yield record


def _acts(tenant: Tenant, rule: Rule, record: Record, now: datetime) -> bool:
    """Would the rule act on the record (a dry run: nothing journaled, nothing done)?"""
    event = Event(tenant.name, tenant.config.crm, SOURCE, record.ref, now, SOURCE)
    ctx = tenant_context(tenant, event, stay_of(None, record))
    return bool(evaluate(event, record, None, [rule], ctx).actions)


def _rule(rt: Runtime, tenant_name: str, rule_id: str) -> tuple[Tenant, Rule]:
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        raise ConfigError([f"no tenant {tenant_name!r} in the configuration"])
    rules = broadcast_rules(tenant)
    found = next((rule for rule in rules if rule.id == rule_id), None)
    if found is None:
        listing = ", ".join(rule.id for rule in rules) or "none"
        raise ConfigError(
            [
                f"{tenant_name}: {rule_id!r} is no broadcast rule (one whose `when: event:` "
                f"names broadcast); its broadcast rules: {listing}"
            ]
        )
    return tenant, found
