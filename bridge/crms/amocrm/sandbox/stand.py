"""The amoCRM sandbox as one tenant's account, seeded from the tenant's mapping.

Users from the mapping's aliases; one pipeline per kind that names its ``pipelines`` (else one
for all of the kind's stages) holding its canonical stages; a custom field per ``cf_<id>``
code, named by its label (``date_time`` for fields typed ``datetime``, ``select`` for fields
with ``values``, else ``text``); loss reasons as they are first used. ``bridge demo --crm
amocrm`` plays on it.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bridge.crms.amocrm.commands import authorize
from bridge.crms.amocrm.sandbox import AmoCRMSandbox
from bridge.crms.amocrm.shapes import CUSTOM, LOSS_REASON
from bridge.sandbox import Stand

if TYPE_CHECKING:
    from bridge.config import Tenant

# what an account posts (https://www.amocrm.ru/developers/content/crm_platform/webhooks-api)
EVENTS = ["add_lead", "update_lead", "status_lead", "note_lead", "add_task"]
ACCOUNT_ID = 30000001
CLIENT_SECRET_ENV, HOOK_SECRET_ENV = "STAND_AMO_CLIENT_SECRET", "STAND_AMO_HOOK_SECRET"
HOOK_SECRET = "stand-hook-secret"
WON, LOST = 142, 143


class AmoCRMStand(Stand):
    """An account whose pipelines, fields and users are the ones a tenant's mapping names."""

    def __init__(self) -> None:
        self.sandbox = AmoCRMSandbox(subdomain="stand", account_id=ACCOUNT_ID)
        self.tenant: Tenant | None = None
        self._reasons: dict[str, int] = {}

    def start(self) -> None:
        """Serve the account."""
        self.sandbox.start()

    def stop(self) -> None:
        """Stop the account."""
        self.sandbox.stop()

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """OAuth with the sandbox's integration; the hook's secret path segment."""
        block = {
            "base_url": self.sandbox.base_url,
            "account_id": ACCOUNT_ID,
            "auth": "oauth",
            "client_id": "sandbox-client",
            "client_secret_env": CLIENT_SECRET_ENV,
            "redirect_uri": "https://bridge.example/oauth/amocrm",
            "webhook_secret_env": HOOK_SECRET_ENV,
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

    def add_deal(self, title: str, stage: str, responsible: str) -> str:
        """A lead of the deal kind in a canonical stage."""
        status = int(self._mapping().stage_id("deal", stage))
        fields = {"name": title, "status_id": status, "pipeline_id": self._pipeline_of(status)}
        fields["responsible_user_id"] = int(self._mapping().user(responsible))
        return str(self.sandbox.add_lead(fields))

    def update_deal(self, deal_id: str, stage: str, fields: dict[str, Any]) -> None:
        """A manager's move; a refusal reason becomes the lead's loss reason."""
        mapping = self._mapping()
        change: dict[str, Any] = {}
        for name, value in fields.items():
            code = mapping.field_code("deal", name)
            if code == LOSS_REASON:
                change["loss_reason_id"] = self._loss_reason(str(value))
            else:
                field_id = int(code.removeprefix(CUSTOM))
                change.setdefault("custom_fields_values", []).append(
                    {"field_id": field_id, "values": [{"value": value}]}
                )
        outcome = {"won": WON, "lost": LOST}
        change["status_id"] = outcome.get(stage) or int(mapping.stage_id("deal", stage))
        self.sandbox.update_lead(int(deal_id), change)

    def written(self) -> list[str]:
        """Tasks and notes the bridge made, in the order they were made."""
        lines = [
            f"task «{t['text'].splitlines()[0]}» → user {t['responsible_user_id']}, deadline "
            f"{datetime.fromtimestamp(t['complete_till'], self._zone()).isoformat()} "
            f"(lead {t['entity_id']})"
            for t in self.sandbox.tasks.values()
        ]
        lines += [
            f"note on lead {n['entity_id']}: {n['params']['text']}"
            for n in self.sandbox.notes.values()
            if n.get("note_type") == "common"
        ]
        return lines

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.tenant.config.timezone if self.tenant else "UTC")

    def _mapping(self) -> Any:
        assert self.tenant is not None, "seed the stand first"
        return self.tenant.mapping

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
