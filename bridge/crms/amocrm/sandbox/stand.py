"""The amoCRM sandbox as one tenant's account, seeded from the tenant's mapping.

Users from the mapping's aliases; one pipeline per kind that names its ``pipelines`` (else one
for all of the kind's stages) holding its canonical stages; a custom field per ``cf_<id>``
code, named by its label (``date_time`` for fields typed ``datetime``, ``select`` for fields
with ``values``, else ``text``); loss reasons as they are first used; contacts with an e-mail
and a phone; calls as ``call_in`` / ``call_out`` notes. ``bridge demo --crm amocrm`` and
``bridge try`` play on it.
"""

from __future__ import annotations

import itertools
import uuid
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bridge.crms.amocrm.commands import authorize
from bridge.crms.amocrm.sandbox import AmoCRMSandbox
from bridge.crms.amocrm.shapes import CUSTOM, LOSS_REASON, kind_of, unix
from bridge.crms.connector import crm_value
from bridge.sandbox import Stand, Written

if TYPE_CHECKING:
    from bridge.config import Tenant
    from bridge.mappings import Mapping

# what an account posts (https://www.amocrm.ru/developers/content/crm_platform/webhooks-api)
EVENTS = ["add_lead", "update_lead", "status_lead", "note_lead", "add_task"]
ACCOUNT_ID = 30000001
CLIENT_SECRET_ENV, HOOK_SECRET_ENV = "STAND_AMO_CLIENT_SECRET", "STAND_AMO_HOOK_SECRET"
HOOK_SECRET = "stand-hook-secret"
WON, LOST = 142, 143
# the v4 lead keys a flattened code writes to as they are (amoCRM's own fields)
PLAIN = {"name", "price", "responsible_user_id"}


class AmoCRMStand(Stand):
    """An account whose pipelines, fields and users are the ones a tenant's mapping names."""

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = AmoCRMSandbox(subdomain="stand", account_id=ACCOUNT_ID)
        self.tenant: Tenant | None = None
        self._reasons: dict[str, int] = {}
        self._homes: dict[str, int] = {}
        self._contact_ids = itertools.count(7000001)

    def start(self) -> None:
        """Serve the account."""
        self.sandbox.start()

    def stop(self) -> None:
        """Stop the account."""
        self.sandbox.stop()

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """OAuth with the sandbox's integration; the hook's secret path segment; no rate limit
        to wait for (the account is local, and a trial's clock may run many sweeps at once)."""
        self.sandbox.rate_limit = None
        block = {
            "base_url": self.sandbox.base_url,
            "account_id": ACCOUNT_ID,
            "auth": "oauth",
            "client_id": "sandbox-client",
            "client_secret_env": CLIENT_SECRET_ENV,
            "redirect_uri": "https://bridge.example/oauth/amocrm",
            "webhook_secret_env": HOOK_SECRET_ENV,
            "requests_per_second": 1000,
            "burst": 1000,
        }
        return block, {CLIENT_SECRET_ENV: "sandbox-secret", HOOK_SECRET_ENV: HOOK_SECRET}

    def seed(self, tenant: Tenant) -> None:
        """Users, pipelines with the mapping's stages, and its custom fields."""
        self.tenant = tenant
        mapping = tenant.mapping
        for alias, user_id in mapping.users.items():
            if user_id.isdigit() and int(user_id) != self.sandbox.admin_id:
                self.sandbox.add_user(int(user_id), alias.title(), f"{alias}@stand.example")
        pipelines: dict[int, list[tuple[int, str]]] = {}
        for kind in ("lead", "deal"):
            km = mapping.kind(kind)
            home = int(km.pipelines[0]) if km.pipelines else _number(f"{tenant.name}:{kind}")
            self._homes[kind] = home
            for name, ids in km.stages.items():
                pipelines.setdefault(home, []).extend((int(i), name) for i in ids if i.isdigit())
        for pipeline, statuses in pipelines.items():
            self.sandbox.add_pipeline(pipeline, f"pipeline {pipeline}", statuses)
        self._seed_fields(tenant)

    def _seed_fields(self, tenant: Tenant) -> None:
        seen: set[int] = set()
        for kind in ("lead", "deal"):
            km = tenant.mapping.kind(kind)
            for name, code in km.fields.items():
                number = code.removeprefix(CUSTOM)
                if not code.startswith(CUSTOM) or not number.isdigit() or int(number) in seen:
                    continue
                seen.add(int(number))
                values, label = km.values.get(name), km.labels.get(name, name)
                if values:
                    enums = [(int(k), v) for k, v in values.items() if k.isdigit()]
                    self.sandbox.add_custom_field(int(number), label, "select", enums)
                else:
                    field_type = "date_time" if km.types.get(name) == "datetime" else "text"
                    self.sandbox.add_custom_field(int(number), label, field_type)

    def connect(self, rt: Any, bridge_url: str) -> None:
        """Authorize the bridge's integration and subscribe its hook."""
        assert self.tenant is not None
        authorize(rt, self.tenant.name, self.sandbox.issue_code())
        hook = f"{bridge_url}/hooks/amocrm/{self.tenant.name}/{HOOK_SECRET}"
        self.sandbox.subscribe(hook, EVENTS)

    def wait_delivered(self) -> None:
        """Block until the account posted everything."""
        self.sandbox.wait_delivered()

    def add_contact(self, name: str, email: str, phone: str) -> str:
        """A contact with a work e-mail and phone (multitext fields)."""
        contact_id = next(self._contact_ids)
        self.sandbox.add_contact(contact_id, name, email=email, phone=phone)
        return str(contact_id)

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
        """A lead of the kind's pipeline in a canonical stage, with its main contact.

        Raises:
            ValueError: a canonical lead where the mapping names no lead pipeline.
        """
        if kind == "lead" and not self._mapping().kind("lead").pipelines:
            raise ValueError("the mapping names no `lead.pipelines`: every amoCRM lead is a deal")
        status, pipeline = self._status(kind, stage, self._homes.get(kind, 0))
        change = self._fields(kind, fields or {})
        change |= {"name": title, "status_id": status, "pipeline_id": pipeline}
        change["responsible_user_id"] = int(self._mapping().user(responsible))
        if contact is not None:
            change["_embedded"] = {"contacts": [{"id": int(contact), "is_main": True}]}
        return str(self.sandbox.add_lead(change))

    def update_record(
        self, kind: str, record_id: str, *, stage: str | None = None, fields: dict[str, Any]
    ) -> None:
        """A manager's change; a refusal reason becomes the lead's loss reason."""
        change = self._fields(kind, fields)
        if stage is not None:
            current = self.sandbox.leads[int(record_id)]["pipeline_id"]
            change["status_id"], _ = self._status(kind, stage, current)
        self.sandbox.update_lead(int(record_id), change)

    def add_call(self, kind: str, record_id: str, *, incoming: bool, completed: bool) -> str:
        """A call note on the lead (``note_lead``); only a call that took place is logged."""
        params = {"uniq": str(uuid.uuid4()), "duration": 60 if completed else 0}
        params |= {"source": "stand", "link": "", "phone": self._phone(record_id)}
        params["call_status"] = 4 if completed else 6  # разговор состоялся / не дозвонился
        fields = {"entity_id": int(record_id), "params": params}
        fields["note_type"] = "call_in" if incoming else "call_out"
        note = self.sandbox.store.create_note(fields, self.sandbox.admin_id)
        return str(note["id"])

    def set_clock(self, now: Callable[[], datetime]) -> None:
        """The account's "now" (unix time)."""
        self.sandbox.clock = lambda: now().timestamp()

    def tasks(self) -> list[Written]:
        """Tasks, in the order they were made (the bridge's marker cut off the text)."""
        out = []
        for t in list(self.sandbox.tasks.values()):
            title, _, rest = t["text"].partition("\n")
            description = "\n".join(x for x in rest.splitlines() if not x.startswith("[#bridge:"))
            due = datetime.fromtimestamp(t["complete_till"], self._zone())
            record = f"{self._kind_of(t['entity_id'])} {t['entity_id']}"
            out.append(
                Written("task", record, title, str(t["responsible_user_id"]), due, description)
            )
        return out

    def comments(self) -> list[Written]:
        """Common notes, in the order they were made."""
        notes = [n for n in list(self.sandbox.notes.values()) if n.get("note_type") == "common"]
        return [
            Written(
                "comment", f"{self._kind_of(n['entity_id'])} {n['entity_id']}", n["params"]["text"]
            )
            for n in notes
        ]

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tenant.config.timezone if self.tenant else "UTC")

    def _mapping(self) -> Mapping:
        assert self.tenant is not None, "seed the stand first"
        return self.tenant.mapping

    def _kind_of(self, lead_id: int) -> str:
        lead = self.sandbox.leads.get(int(lead_id)) or {}
        return kind_of(self._mapping(), lead.get("pipeline_id"))

    def _status(self, kind: str, stage: str, pipeline: int) -> tuple[int, int]:
        if stage in ("won", "lost"):
            return (WON if stage == "won" else LOST), pipeline
        status = int(self._mapping().stage_id(kind, stage))
        if status in (WON, LOST):  # a stage mapped to an outcome: every pipeline has both
            return status, pipeline
        return status, self._pipeline_of(status)

    def _fields(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        mapping = self._mapping()
        change: dict[str, Any] = {}
        for name, value in fields.items():
            code, raw = mapping.field_code(kind, name), crm_value(kind, name, value, mapping)
            if code == LOSS_REASON:
                change["loss_reason_id"] = self._loss_reason(str(value))
            elif code.startswith(CUSTOM):
                item = {"enum_id": int(raw)} if str(raw).isdigit() and raw != value else None
                change.setdefault("custom_fields_values", []).append(
                    {"field_id": int(code.removeprefix(CUSTOM)), "values": [item or {"value": raw}]}
                )
            elif code in PLAIN:
                change[code] = raw if code == "name" else int(float(raw))
            elif code == "created_at":  # a record made earlier (the account's own stamp)
                change[code] = unix(value)
            else:
                raise ValueError(f"field {name!r} ({code}) is not one a person sets in amoCRM")
        return change

    def _phone(self, lead_id: str) -> str:
        lead = self.sandbox.leads.get(int(lead_id)) or {}
        contacts = (lead.get("_embedded") or {}).get("contacts") or []
        found = self.sandbox.store.contacts.get(contacts[0]["id"]) if contacts else None
        for field in (found or {}).get("custom_fields_values") or []:
            if field.get("field_code") == "PHONE":
                return str(field["values"][0]["value"])
        return ""

    def _pipeline_of(self, status: int) -> int:
        for pipeline in self.sandbox.store.pipelines.values():
            if any(s["id"] == status for s in pipeline["_embedded"]["statuses"]):
                return int(pipeline["id"])
        raise KeyError(f"no pipeline holds status {status}")

    def _loss_reason(self, name: str) -> int:
        if name not in self._reasons:
            self._reasons[name] = 4200000 + len(self._reasons)
            self.sandbox.add_loss_reason(self._reasons[name], name)
        return self._reasons[name]


def _number(text: str) -> int:
    """A stable pipeline id for a kind whose mapping names none."""
    return 1000000 + zlib.crc32(text.encode()) % 1000000
