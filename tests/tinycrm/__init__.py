"""TinyCRM: a CRM that exists only in the tests, added without touching any file of bridge/.

It is the proof of docs/adding-a-crm.md: a declaration (this file), a connector, an ingress
blueprint, a default mapping and a sandbox, each a page of code, registered at run time with
``bridge.crms.register``. TinyCRM speaks JSON over REST and posts form-encoded webhooks to a
URL whose last path segment is a secret token.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bridge.crms import CRM, RecordKind
from bridge.crms.base import ConnectionSettings

ACTIONS = frozenset({"create_task", "add_comment", "update_fields", "move_stage", "reassign"})


class TinySettings(ConnectionSettings):
    """The ``connection`` block of a TinyCRM tenant."""

    base_url: str = Field(description="the account's address")
    api_key_env: str = Field(description="env var holding the REST API key (secret)")
    hook_token_env: str = Field(description="env var holding the webhook's token (secret)")


class TinyCRM(CRM):
    """Deals only; every CRM action on them."""

    name: ClassVar[str] = "tinycrm"
    title: ClassVar[str] = "TinyCRM"
    docs_url: ClassVar[str] = "https://tinycrm.invalid/docs"
    settings: ClassVar[type[ConnectionSettings]] = TinySettings
    record_kinds: ClassVar[tuple[RecordKind, ...]] = (RecordKind("deal", "сделка", ACTIONS),)
    secret_patterns: ClassVar[tuple[str, ...]] = (r"(/hooks/tinycrm/[^/\s?]+/)([^/\s?]+)",)
    connector: ClassVar[str] = "tests.tinycrm.connector:TinyConnector"
    ingress: ClassVar[str] = "tests.tinycrm.ingress:bp"
