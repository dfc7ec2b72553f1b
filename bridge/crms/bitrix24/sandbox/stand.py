"""The Bitrix24 sandbox as one tenant's portal, seeded from the tenant's mapping.

Every canonical stage of the mapping becomes a stage of its pipeline (``C<n>:`` ids make
pipeline ``n``), each pipeline gets a won and a lost stage, every ``UF_CRM_*`` code becomes a
user field (with the mapping's label and type), every user alias a user. ``bridge demo``
plays its story on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.sandbox import Stand

if TYPE_CHECKING:
    from bridge.config import Tenant

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


class Bitrix24Stand(Stand):
    """A portal whose pipelines, fields and users are the ones a tenant's mapping names."""

    def __init__(self) -> None:
        self.sandbox = Bitrix24Sandbox(webhook_code="stand-webhook-secret")
        self.tenant: Tenant | None = None

    def start(self) -> None:
        """Serve the portal."""
        self.sandbox.start()

    def stop(self) -> None:
        """Stop the portal."""
        self.sandbox.stop()

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """An incoming webhook and the outgoing webhook's token."""
        block = {"webhook_url_env": WEBHOOK_ENV, "application_token_env": TOKEN_ENV}
        secrets = {WEBHOOK_ENV: self.sandbox.webhook_url, TOKEN_ENV: self.sandbox.application_token}
        return block, secrets

    def seed(self, tenant: Tenant) -> None:
        """Users, the deal pipelines with their stages, and the user fields of the mapping."""
        self.tenant = tenant
        mapping = tenant.mapping
        for alias, user_id in mapping.users.items():
            if user_id.isdigit():
                self.sandbox.add_user(int(user_id), alias.title(), "", f"{alias}@stand.example")
        pipelines: dict[int, list[tuple[str, str, str]]] = {}
        for name, ids in mapping.kind("deal").stages.items():
            for stage_id in ids:
                category, _, code = stage_id.rpartition(":")
                number = int(category[1:]) if category.startswith("C") else 0
                pipelines.setdefault(number, []).append((code, name, "P"))
        for number, stages in pipelines.items():
            stages += [("WON", "won", "S"), ("LOSE", "lost", "F")]
            self.sandbox.add_pipeline(number, f"pipeline {number}", stages)
        for kind in ("deal", "lead"):
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

    def add_deal(self, title: str, stage: str, responsible: str) -> str:
        """A deal in a canonical stage of its pipeline."""
        stage_id = self._stage(stage)
        category = stage_id.partition(":")[0][1:] if ":" in stage_id else "0"
        fields = {"TITLE": title, "CATEGORY_ID": category, "STAGE_ID": stage_id}
        fields["ASSIGNED_BY_ID"] = self._mapping().user(responsible)
        return str(self.sandbox.add_deal(fields))

    def update_deal(self, deal_id: str, stage: str, fields: dict[str, Any]) -> None:
        """A manager's move, with canonical fields set on the way."""
        mapping = self._mapping()
        change = {mapping.field_code("deal", k): v for k, v in fields.items()}
        current = self.sandbox.deals[int(deal_id)]["STAGE_ID"]
        change["STAGE_ID"] = self._stage(stage, current)
        self.sandbox.update_deal(int(deal_id), change, by_user=1)

    def written(self) -> list[str]:
        """Tasks and timeline comments, in the order they were made."""
        lines = [
            f"task «{t['TITLE']}» → user {t['RESPONSIBLE_ID']}, deadline "
            f"{t.get('DEADLINE') or '-'} ({', '.join(t['UF_CRM_TASK'])})"
            for t in self.sandbox.tasks.values()
        ]
        lines += [
            f"comment on {c['ENTITY_TYPE']} {c['ENTITY_ID']}: {c['COMMENT']}"
            for c in self.sandbox.comments.values()
        ]
        return lines

    def _mapping(self) -> Any:
        assert self.tenant is not None, "seed the stand first"
        return self.tenant.mapping

    def _stage(self, name: str, current: str = "") -> str:
        if name in ("won", "lost"):
            prefix = current.partition(":")[0] + ":" if ":" in current else ""
            return prefix + ("WON" if name == "won" else "LOSE")
        return self._mapping().stage_id("deal", name)
