"""Bitrix24: the declaration the registry reads (connector, ingress, mapping, sandbox beside it).

REST through an incoming webhook (``/rest/<user>/<code>/``), events through an outgoing
webhook signed with an application token. D: = https://apidocs.bitrix24.com/<path>.html, as
summed up with citations in shared/reference/bitrix24.md.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bridge.crms.base import CRM, ConnectionSettings, RecordKind

ACTIONS = frozenset({"create_task", "add_comment", "update_fields", "move_stage", "reassign"})


class Bitrix24Settings(ConnectionSettings):
    """The ``connection`` block of a Bitrix24 tenant."""

    webhook_url_env: str = Field(description="env var holding the incoming-webhook URL (secret)")
    application_token_env: str = Field(
        description="env var holding the outgoing webhook's application token (secret)"
    )
    member_id: str | None = Field(
        default=None, description="portal id; keys the shared rate limit (default: the tenant)"
    )
    requests_per_second: float = Field(default=2.0, description="2 on most plans, 5 on Enterprise")
    burst: int = Field(default=50, description="50 on most plans, 250 on Enterprise")
    timeout: float = Field(default=30.0, description="seconds per HTTP request")

    def address(self) -> str:
        """The portal's address: the start of the incoming webhook's URL."""
        return f"the portal's address in ${self.webhook_url_env} (https://<portal>/rest/...)"

    def credentials(self) -> str:
        """The incoming webhook (its URL is its credential)."""
        return (
            f"that the incoming webhook in ${self.webhook_url_env} still exists on the portal "
            "and has the crm and task scopes"
        )


class Bitrix24(CRM):
    """Bitrix24 (cloud or box): deals and leads of the CRM, tasks of the task module."""

    name: ClassVar[str] = "bitrix24"
    title: ClassVar[str] = "Bitrix24"
    docs_url: ClassVar[str] = "https://apidocs.bitrix24.com/"
    settings: ClassVar[type[ConnectionSettings]] = Bitrix24Settings
    record_kinds: ClassVar[tuple[RecordKind, ...]] = (
        RecordKind("deal", "сделка", ACTIONS),
        RecordKind("lead", "лид", ACTIONS),
    )
    # /rest/<user id>/<webhook code>/: the code is the credential (reference/bitrix24.md §2.1)
    secret_patterns: ClassVar[tuple[str, ...]] = (r"(/rest/\d+/)([^/\s?]+)",)
    connector: ClassVar[str] = "bridge.crms.bitrix24.connector:Bitrix24Connector"
    ingress: ClassVar[str] = "bridge.crms.bitrix24.ingress:bp"
    sandbox: ClassVar[str | None] = "bridge.crms.bitrix24.sandbox.stand:Bitrix24Stand"
