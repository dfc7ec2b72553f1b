"""The Bitrix24 sandbox as one tenant's portal, seeded from the tenant's mapping.

Every canonical deal stage of the mapping becomes a stage of its pipeline (``C<n>:`` ids make
pipeline ``n``), each pipeline gets a won and a lost stage; lead stages the portal lacks are
added to the lead statuses; every ``UF_CRM_*`` code becomes a user field (with the mapping's
label and type), every user alias a user. ``bridge demo`` and ``bridge try`` play on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.crms.bitrix24.sandbox.store import DEAL, LEAD, CrmKind
from bridge.crms.connector import crm_value
from bridge.sandbox import Stand, Written

if TYPE_CHECKING:
    from bridge.config import Tenant
    from bridge.mappings import Mapping

# what a portal posts to the bridge (README, "From the demo to a real Bitrix24 portal")
EVENTS = (
    "ONCRMDEALADD",
    "ONCRMDEALUPDATE",
    "ONCRMLEADADD",
    "ONCRMLEADUPDATE",
    "ONCRMACTIVITYADD",
    "ONCRMACTIVITYUPDATE",
)
WEBHOOK_ENV, TOKEN_ENV = "STAND_B24_WEBHOOK_URL", "STAND_B24_APP_TOKEN"
KINDS = {"deal": DEAL, "lead": LEAD}
OWNER_TYPES = {"lead": 1, "deal": 2}  # D:api-reference/crm/data-types.md#object_type
PREFIXES = {"L": "lead", "D": "deal"}
CALL, INCOMING, OUTGOING = 2, 1, 2  # D:api-reference/crm/data-types.md (#activity-enums)
ACTIVITY_TYPES = {"meeting": (1, "Встреча"), "call": (CALL, "Звонок")}  # TYPE_ID, SUBJECT


class Bitrix24Stand(Stand):
    """A portal whose pipelines, fields and users are the ones a tenant's mapping names."""

    leads_link_contact = False  # a lead carries its client's e-mail and phone itself

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = Bitrix24Sandbox(webhook_code="stand-webhook-secret")
        self.tenant: Tenant | None = None

    def start(self) -> None:
        """Serve the portal."""
        self.sandbox.start()

    def stop(self) -> None:
        """Stop the portal."""
        self.sandbox.stop()

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """An incoming webhook and the outgoing webhook's token; no rate limit to wait for (the
        portal is local, and a trial's clock may run a hundred sweeps in a second)."""
        block: dict[str, Any] = {"webhook_url_env": WEBHOOK_ENV, "application_token_env": TOKEN_ENV}
        block |= {"requests_per_second": 1000, "burst": 1000}
        secrets = {WEBHOOK_ENV: self.sandbox.webhook_url, TOKEN_ENV: self.sandbox.application_token}
        return block, secrets

    def seed(self, tenant: Tenant) -> None:
        """Users, the deal pipelines with their stages, lead stages, and the user fields."""
        self.tenant = tenant
        mapping = tenant.mapping
        for alias, user_id in mapping.users.items():
            if user_id.isdigit():
                first, _, last = alias.title().partition("_")
                self.sandbox.add_user(int(user_id), first, last, f"{alias}@stand.example")
        pipelines: dict[int, list[tuple[str, str, str]]] = {}
        for name, ids in mapping.kind("deal").stages.items():
            for stage_id in ids:
                category, _, code = stage_id.rpartition(":")
                number = int(category[1:]) if category[1:].isdigit() else 0
                pipelines.setdefault(number, []).append((code, name, "P"))
        for number, stages in pipelines.items():
            stages += [("WON", "won", "S"), ("LOSE", "lost", "F")]
            self.sandbox.add_pipeline(number, f"pipeline {number}", stages)
        for name, ids in mapping.kind("lead").stages.items():
            for status_id in ids:
                self.sandbox.store.add_lead_status(status_id, name)
        for kind in KINDS:
            km = mapping.kind(kind)
            for name, code in km.fields.items():
                if code.startswith("UF_CRM_"):
                    field_type = "datetime" if km.types.get(name) == "datetime" else "string"
                    self.sandbox.add_userfield(kind, code, field_type, km.labels.get(name, name))

    def connect(self, rt: Any, bridge_url: str) -> None:
        """Subscribe the bridge's hook to the events a portal posts."""
        assert self.tenant is not None
        for event in EVENTS:
            self.sandbox.subscribe(event, f"{bridge_url}/hooks/bitrix24/{self.tenant.name}")

    def wait_delivered(self) -> None:
        """Block until the portal posted everything."""
        self.sandbox.wait_delivered()

    def add_contact(self, name: str, email: str, phone: str) -> str:
        """A contact with a work e-mail and phone."""
        first, _, last = name.partition(" ")
        return str(self.sandbox.add_contact(first, last, email, phone))

    def add_record(
        self,
        kind: str,
        title: str,
        stage: str,
        responsible: str,
        *,
        contact: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> str:
        """A deal (in its stage's pipeline) or a lead; a lead carries its client's e-mail and
        phone itself, a deal names the contact."""
        crm = KINDS[kind]
        values = self._fields(kind, fields or {})
        values |= {"TITLE": title, crm.stage_field: self._stage(crm, stage)}
        values["ASSIGNED_BY_ID"] = self._mapping().user(responsible)
        if crm is DEAL:
            stage_id = values[crm.stage_field]
            values["CATEGORY_ID"] = stage_id.partition(":")[0][1:] if ":" in stage_id else "0"
        values |= self._client(crm, contact)
        return str(self.sandbox.store.add_crm(crm, values, by_user=1, trusted=True))

    def update_record(
        self, kind: str, record_id: str, *, stage: str | None = None, fields: dict[str, Any]
    ) -> None:
        """A manager's change, with canonical fields set on the way."""
        crm = KINDS[kind]
        change = self._fields(kind, fields)
        if stage is not None:
            current = self.sandbox.store.table(crm)[int(record_id)][crm.stage_field]
            change[crm.stage_field] = self._stage(crm, stage, current)
        self.sandbox.store.update_crm(crm, int(record_id), change, by_user=1, trusted=True)

    def add_call(self, kind: str, record_id: str, *, incoming: bool, completed: bool) -> str:
        """A call activity on the record (``ONCRMACTIVITYADD``)."""
        return self.add_activity(kind, record_id, "call", incoming=incoming, completed=completed)

    def add_activity(
        self, kind: str, record_id: str, activity_type: str, *, incoming: bool, completed: bool
    ) -> str:
        """A call or a meeting on the record (``ONCRMACTIVITYADD``)."""
        if activity_type not in ACTIVITY_TYPES:
            return super().add_activity(
                kind, record_id, activity_type, incoming=incoming, completed=completed
            )
        type_id, subject = ACTIVITY_TYPES[activity_type]
        activity = {
            **{"OWNER_TYPE_ID": OWNER_TYPES[kind], "OWNER_ID": record_id, "TYPE_ID": type_id},
            **{"DIRECTION": INCOMING if incoming else OUTGOING, "SUBJECT": subject},
            "COMPLETED": "Y" if completed else "N",
        }
        return str(self.sandbox.add_activity(activity))

    def set_clock(self, now: Callable[[], datetime]) -> None:
        """The portal's "now"."""
        self.sandbox.clock = now

    def tasks(self) -> list[Written]:
        """Tasks, in the order they were made."""
        out = []
        for t in list(self.sandbox.tasks.values()):
            bound = t["UF_CRM_TASK"] or [""]  # none: a task for another CRM's record
            prefix, _, number = bound[0].partition("_")
            deadline = datetime.fromisoformat(t["DEADLINE"]) if t.get("DEADLINE") else None
            record = f"{PREFIXES.get(prefix, prefix)} {number}" if number else ""
            out.append(
                Written("task", record, t["TITLE"], t["RESPONSIBLE_ID"], deadline, t["DESCRIPTION"])
            )
        return out

    def comments(self) -> list[Written]:
        """Timeline comments, in the order they were made."""
        return [
            Written("comment", f"{c['ENTITY_TYPE']} {c['ENTITY_ID']}", c["COMMENT"])
            for c in list(self.sandbox.comments.values())
        ]

    def _mapping(self) -> Mapping:
        assert self.tenant is not None, "seed the stand first"
        return self.tenant.mapping

    def _fields(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        mapping = self._mapping()
        return {
            mapping.field_code(kind, k): crm_value(kind, k, v, mapping) for k, v in fields.items()
        }

    def _client(self, crm: CrmKind, contact: str | None) -> dict[str, Any]:
        if contact is None:
            return {}
        if crm is DEAL:
            return {"CONTACT_ID": contact}
        found = self.sandbox.store.contacts[int(contact)]
        return {k: [dict(found[k][0], ID="")] for k in ("EMAIL", "PHONE") if found.get(k)}

    def _stage(self, crm: CrmKind, name: str, current: str = "") -> str:
        if name in ("won", "lost") and crm is DEAL:
            prefix = current.partition(":")[0] + ":" if ":" in current else ""
            return prefix + ("WON" if name == "won" else "LOSE")
        if name in ("won", "lost"):
            wanted = "S" if name == "won" else "F"
            return next(
                s["STATUS_ID"]
                for s in self.sandbox.store.stages_of("STATUS")
                if s["SEMANTICS"] == wanted
            )
        return self._mapping().stage_id(crm.name, name)
