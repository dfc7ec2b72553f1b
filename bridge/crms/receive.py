"""What a CRM's webhook receiver works with: the parsed call, the refusal, and the gate.

A receiver (``bridge/crms/<name>/ingress.py``, a Flask blueprint) authenticates a call and
parses the CRM's wire format into :class:`Incoming` items; the :class:`Gate` queues them.
The gate is the app's (``bridge.ingress``), handed over through ``current_app.extensions``,
so a CRM package never imports the queue, the journal or the runtime: it speaks only the
words defined here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from bridge import formdata

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
        raise Rejected(404, f"no {title} tenant {formdata.clip(name, 40)!r}")
    return found


FORM = "application/x-www-form-urlencoded"
"""The one body format both CRMs' webhooks use (reference/bitrix24.md §1, amocrm.md §1)."""

ID_DIGITS = 18
"""The most digits a CRM's id may have: any 18-digit number fits the 64-bit ids of both CRMs."""
_ID = re.compile(rf"[0-9]{{1,{ID_DIGITS}}}")


def read_form(limits: formdata.FormLimits = formdata.LIMITS) -> dict[str, Any]:
    """The request's form body as nested dicts, read only within ``limits``.

    The size is checked before the body is read (and while it is, for a body without a
    length), the number of keys before it is parsed, each key's shape before it is nested.

    Raises:
        Rejected: 415 for another content type, 413 for a body too large or with too many
            keys, 400 for a malformed or too deep key.
    """
    if request.mimetype != FORM:
        given = formdata.clip(request.mimetype or "none", 40)
        raise Rejected(415, f"the body must be {FORM}, as the CRM sends it (got {given})")
    request.max_content_length = limits.max_bytes
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise Rejected(413, f"the body is over {limits.max_bytes} bytes") from None
    try:
        return formdata.decode(body, limits)
    except formdata.FormTooLarge as exc:
        raise Rejected(413, str(exc)) from None
    except formdata.FormKeyError as exc:
        raise Rejected(400, str(exc)) from None


def number(value: Any, key: str) -> str:
    """A CRM's id as the call gives it: 1 to 18 ASCII digits (``²`` or ``١٢٣`` pass
    ``str.isdigit()``; ``int()`` refuses the first and a CRM knows neither).

    Raises:
        Rejected: 400 naming the key, for a missing value, a nested one or another shape.
    """
    if value is None or value == "":
        raise Rejected(400, f"missing {key}")
    if isinstance(value, dict):
        raise Rejected(400, f"{key} must be a value, not {key}[...]")
    text = str(value).strip()
    if not _ID.fullmatch(text):
        shown = formdata.clip(text, 20)
        raise Rejected(400, f"{key} must be a number of 1 to {ID_DIGITS} digits 0-9, got {shown!r}")
    return text
