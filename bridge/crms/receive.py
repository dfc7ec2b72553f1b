"""What a CRM's webhook receiver works with: the parsed call, the refusal, and the gate.

A receiver (``bridge/crms/<name>/ingress.py``, a Flask blueprint) authenticates a call and
parses the CRM's wire format into :class:`Incoming` items; the :class:`Gate` queues them.
The gate is the app's (``bridge.ingress``), handed over through ``current_app.extensions``,
so a CRM package never imports the queue, the journal or the runtime: it speaks only the
words defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app
from flask.typing import ResponseReturnValue

if TYPE_CHECKING:
    from bridge.config import Tenant
    from bridge.lockout import Lockout

GATE = "bridge.gate"
"""The key of the gate in ``app.extensions``."""


class Rejected(Exception):
    """A call the bridge refuses: answered with a 4xx and a JSON reason.

    ``trusted``: the call proved to come from the tenant's CRM (it passed authentication), so
    the refusal is journaled; a stranger's refusals are only counted and sampled.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        payload: dict[str, Any] | None = None,
        *,
        trusted: bool = False,
    ) -> None:
        super().__init__(reason)
        self.status, self.reason, self.payload = status, reason, payload or {}
        self.trusted = trusted


@dataclass(frozen=True)
class Incoming:
    """A parsed, authenticated call, ready to be journaled and queued."""

    tenant: str
    crm: str
    source: str
    type: str
    kind: str
    record_id: str
    dedup_key: str
    payload: dict[str, Any]
    subject: str | None = None


class Gate(Protocol):
    """Where received events go: the journal and the queue (``bridge.ingress.Gate``)."""

    def tenant(self, name: str) -> Tenant | None:
        """A configured tenant by name, or None."""

    def accept(self, item: Incoming) -> tuple[str | None, str]:
        """Queue one event; returns its entry id and ``queued``, ``duplicate`` or
        ``spooled`` (kept on disk while Redis is down)."""

    def reject(self, tenant: str, crm: str, error: Rejected) -> ResponseReturnValue:
        """Answer a refused call with its 4xx and reason (journaled when trusted)."""

    def lockout(self, scope: str, max_failures: int, minutes: int) -> Lockout:
        """The failed logins of a scope (a CRM that logs in with a password), in the Redis
        every web process shares."""


def gate() -> Gate:
    """The gate of the running app."""
    return current_app.extensions[GATE]


def find_tenant(name: str, crm: str, title: str) -> Tenant:
    """The tenant a hook's URL names, if it is one of ``crm``'s.

    Raises:
        Rejected: 404, so that a stranger cannot tell tenants of other CRMs apart.
    """
    found = gate().tenant(name)
    if found is None or found.config.crm != crm:
        raise Rejected(404, f"no {title} tenant {name!r}")
    return found
