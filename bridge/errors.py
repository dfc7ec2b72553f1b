"""The bridge's exceptions: two families for work (transient, permanent) and one for config.

Connectors raise, they never return False: the pipeline must tell "retry later" from "never".
"""

from __future__ import annotations

import os


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class TransientError(BridgeError):
    """The work may succeed later: rate limit, 5xx, timeout, connection refused.

    The job is retried with backoff; nothing is dropped.
    """


class NoAnswer(TransientError):
    """The CRM gave no HTTP answer at all: the connection was refused or failed, or the
    request timed out (a person reading this checks the address and the network first)."""

    @staticmethod
    def why(exc: BaseException, timeout: float) -> str:
        """Why an HTTP client's request got no answer, in words and without its URL (a
        Bitrix24 webhook's path is a secret): ``no answer within 5 s (ReadTimeout)``,
        ``no answer: Connection refused (ConnectionError)``."""
        name = type(exc).__name__
        if isinstance(exc, TimeoutError) or "Timeout" in name:
            return f"no answer within {timeout:g} s ({name})"
        cause = _os_error(exc)
        return f"no answer: {cause} ({name})" if cause else f"no answer ({name})"


class RedisUnavailable(TransientError):
    """The Redis the bridge's processes share did not answer where a CRM keeps its state
    there (amoCRM's tokens)."""


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


def _os_error(exc: BaseException, depth: int = 6) -> str:
    """The operating system's words under an HTTP client's error (``Connection refused``,
    ``Name or service not known``), found through the chain the clients wrap it in."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno) if exc.errno > 0 else str(exc.strerror or "")
    if depth == 0:
        return ""
    inner = [getattr(exc, "os_error", None), getattr(exc, "reason", None), exc.__cause__]
    inner += [exc.__context__, *(a for a in exc.args if isinstance(a, BaseException))]
    for one in inner:
        if isinstance(one, BaseException):
            found = _os_error(one, depth - 1)
            if found:
                return found
    return ""
