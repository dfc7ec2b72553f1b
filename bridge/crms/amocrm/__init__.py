"""amoCRM: the declaration the registry reads (connector, ingress, mapping, sandbox beside it).

API v4 with OAuth 2.0 or a long-lived token; account webhooks posted to a URL whose path holds
a secret. amoCRM's «сделки» are its leads: one entity, told apart by pipeline, so both
canonical kinds (``lead`` for requests, ``deal`` for the rest) are amoCRM leads.
D: = https://www.amocrm.ru/developers/content/ (quoted in shared/reference/amocrm.md).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from bridge.crms.base import CRM, Check, ConnectionSettings, RecordKind

ACTIONS = frozenset({"create_task", "add_comment", "update_fields", "move_stage", "reassign"})
PACE = 0.9  # share of requests_per_second actually used (see AmoCRM.pace)
HOOK_CHECK_SECONDS = 15 * 60
"""How often `bridge cron` asks an account whether it disabled the bridge's webhook."""


class AmoCRMSettings(ConnectionSettings):
    """The ``connection`` block of an amoCRM tenant."""

    optional_secrets: ClassVar[frozenset[str]] = frozenset({"refresh_token_env"})

    base_url: str = Field(description="the account's address, e.g. https://example.amocrm.ru")
    account_id: int = Field(description="the account's id: keys tokens and the rate limit")
    auth: Literal["oauth", "long_lived"] = "oauth"
    client_id: str | None = Field(default=None, description="the integration's id (oauth)")
    client_secret_env: str | None = Field(default=None, description="env var: its secret")
    redirect_uri: str | None = Field(default=None, description="exactly as in the integration")
    refresh_token_env: str | None = Field(
        default=None, description="env var: a first refresh token, used only while none is stored"
    )
    long_lived_token_env: str | None = Field(default=None, description="env var (long_lived)")
    webhook_secret_env: str = Field(description="env var: the secret path segment of the hook")
    requests_per_second: float = Field(default=7.0, description="7 per integration, documented")
    burst: int = Field(default=1, description="1: never more than the rate in any second")
    timeout: float = Field(default=20.0, description="seconds per HTTP request")

    @field_validator("base_url")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.rstrip("/")
        scheme, _, rest = value.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError("base_url must be the account's address, e.g. https://x.amocrm.ru")
        return value

    def address(self) -> str:
        """The account's address."""
        return f"base_url ({self.base_url})"

    def credentials(self) -> str:
        """The long-lived token, or the integration's OAuth tokens."""
        if self.auth == "long_lived":
            return f"the long-lived token in ${self.long_lived_token_env} (expired or revoked?)"
        return "the integration's tokens: renew them with `bridge amocrm-auth CODE --tenant ...`"

    @model_validator(mode="after")
    def _credentials(self) -> AmoCRMSettings:
        wanted = ("client_id", "client_secret_env", "redirect_uri")
        if self.auth == "long_lived":
            wanted = ("long_lived_token_env",)
        missing = [name for name in wanted if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth: {self.auth} needs {', '.join(missing)}")
        return self


class AmoCRM(CRM):
    """amoCRM (and Kommo, its international twin): leads, tasks, notes, contacts."""

    name: ClassVar[str] = "amocrm"
    title: ClassVar[str] = "amoCRM"
    docs_url: ClassVar[str] = "https://www.amocrm.ru/developers/content/crm_platform/api-reference"
    settings: ClassVar[type[ConnectionSettings]] = AmoCRMSettings
    record_kinds: ClassVar[tuple[RecordKind, ...]] = (
        RecordKind("deal", "сделка", ACTIONS),
        RecordKind("lead", "заявка (сделка в воронке обращений)", ACTIONS),
    )
    # /hooks/amocrm/<tenant>/<secret>: amoCRM signs nothing, the path segment is the credential
    secret_patterns: ClassVar[tuple[str, ...]] = (r"(/hooks/amocrm/[^/\s?]+/)([^/\s?\"'(),;]+)",)
    checks: ClassVar[tuple[Check, ...]] = (
        # more than 100 invalid answers in 2 hours disable a hook, and only the account's
        # admins get a bell notice (D:crm_platform/webhooks-api)
        Check("disabled_hooks", HOOK_CHECK_SECONDS, "the account disabled the bridge's webhook"),
    )
    commands: ClassVar[tuple[str, ...]] = ("bridge.crms.amocrm.commands:amocrm_auth",)
    connector: ClassVar[str] = "bridge.crms.amocrm.connector:AmoCRMConnector"
    ingress: ClassVar[str] = "bridge.crms.amocrm.ingress:bp"
    sandbox: ClassVar[str | None] = "bridge.crms.amocrm.sandbox.stand:AmoCRMStand"

    @classmethod
    def limiter_key(cls, tenant_name: str, options: Any) -> str:
        """amoCRM counts per account: ``amocrm:<account_id>``."""
        return f"amocrm:{options.account_id}"

    @classmethod
    def pace(cls, options: Any) -> float:
        """A little under the account's limit: a request leaves when the bucket says, but
        arrives after a varying network and server delay, so a bucket paced at exactly 7/s
        lets amoCRM count 8 in some second (and answer 429). 10% below leaves ~100 ms."""
        return float(options.requests_per_second) * PACE
