"""The bridge's exceptions: two families for work (transient, permanent) and one for config.

Connectors raise, they never return False: the pipeline must tell "retry later" from "never".
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class TransientError(BridgeError):
    """The work may succeed later: rate limit, 5xx, timeout, connection refused.

    The job is retried with backoff; nothing is dropped.
    """


class PermanentError(BridgeError):
    """Retrying cannot help: not found, access denied, a rejected field. Journaled, not retried."""


class AuthError(PermanentError):
    """The CRM refused our credentials (expired webhook, revoked token)."""


class ConfigError(BridgeError):
    """A configuration file is wrong; the message names file:line, the key and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NeedsAttention(TransientError):
    """Transient for the work (it waits, nothing is dropped), but a person must act: the
    CRM's credentials expired or were revoked. The pipeline journals an alert."""


class CredentialsExpired(NeedsAttention):
    """The CRM says the bridge's token expired (Bitrix24 ``expired_token``)."""


class TenantPaused(NeedsAttention):
    """A tenant's CRM credentials are dead (a revoked refresh token, an expired long-lived token).

    Transient on purpose: the tenant's work stops, but its events stay queued and are retried
    by rq; they go through once an admin re-authorizes (``bridge amocrm-auth``), never dropped.
    """


class SchemaError(BridgeError):
    """The journal's database has no schema, or an older one: run ``bridge migrate``."""
