"""Outgoing webhooks of the Bitrix24 sandbox, posted as the portal's queue server posts them.

D:local-integrations/local-webhooks.md, D:api-reference/events/index.md: form-encoded with PHP
bracket keys, only the id in ``data``, the ``auth`` block without OAuth tokens, one attempt per
event ("will not resend the event"), from a queue rather than inside the change.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from bridge.formdata import build_query, flatten
from bridge.sandbox.common import Post, Poster

# Event names as the docs' samples spell them on the wire; the others are upper-case.
# D:api-reference/crm/timeline/activities/events/on-crm-activity-add.md,
# D:api-reference/crm/timeline/comments/events/on-Crm-Timeline-Comment-Add.md
WIRE_EVENT_NAMES = {
    "ONCRMACTIVITYADD": "onCrmActivityAdd",
    "ONCRMACTIVITYUPDATE": "onCrmActivityUpdate",
    "ONCRMTIMELINECOMMENTADD": "onCrmTimelineCommentAdd",
}


@dataclass(frozen=True)
class Portal:
    """What the ``auth`` block of an event says about the portal."""

    domain: str
    member_id: str
    application_token: str


def event_data(event: str, entity_id: int | str) -> dict[str, Any]:
    """The ``data`` block of one event.

    D:api-reference/crm/deals/events/on-crm-deal-update.md (``FIELDS.ID``),
    D:api-reference/crm/timeline/comments/events/on-Crm-Timeline-Comment-Add.md (``ID``),
    D:api-reference/tasks/events-tasks/on-task-add.md (``FIELDS_AFTER.ID``).
    """
    if event == "ONCRMTIMELINECOMMENTADD":
        return {"ID": entity_id}
    if event == "ONTASKADD":
        return {
            **{"FIELDS_BEFORE": "undefined", "FIELDS_AFTER": {"ID": entity_id}},
            **{"IS_ACCESSIBLE_BEFORE": "N", "IS_ACCESSIBLE_AFTER": "undefined"},
        }
    return {"FIELDS": {"ID": entity_id}}


class EventDispatcher:
    """Subscriptions; deliveries go through the sandboxes' shared background :class:`Poster`."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.poster = Poster("b24-events", timeout=10)
        self._lock = threading.Lock()
        self._subscriptions: dict[str, list[tuple[int, str]]] = {}
        self._handler_ids = itertools.count(1)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """One entry per post: event, id, ts, url, status (None and ``error`` on failure)."""
        return self.poster.deliveries

    def start(self) -> None:
        """Start the delivery thread; events queued before are delivered then."""
        self.poster.start()

    def stop(self) -> None:
        """Finish the queued deliveries and stop the thread."""
        self.poster.stop()

    def subscribe(self, event: str, url: str) -> None:
        """Post ``event`` to ``url`` from now on; each subscription gets an event_handler_id."""
        with self._lock:
            entry = (next(self._handler_ids), url)
            self._subscriptions.setdefault(event.upper(), []).append(entry)

    def handler_id(self, event: str, url: str) -> int:
        """The id of the subscription of ``url`` to ``event``, or a fresh one."""
        with self._lock:
            found = [h for h, u in self._subscriptions.get(event.upper(), []) if u == url]
            return found[0] if found else next(self._handler_ids)

    def emit(self, event: str, entity_id: int | str) -> None:
        """Queue ``event`` for every subscriber; the delivery thread posts it, once."""
        with self._lock:
            targets = list(self._subscriptions.get(event.upper(), []))
        for handler_id, url in targets:
            payload = self.payload(event.upper(), entity_id, handler_id)
            record = {"event": event.upper(), "id": entity_id, "ts": payload["ts"]}
            self.poster.put(Post(url, build_query(payload), record))

    def wait(self, timeout: float) -> None:
        """Block until nothing is queued or in flight.

        Raises:
            TimeoutError: events still pending after ``timeout`` seconds.
        """
        self.poster.wait(timeout)

    def payload(
        self, event: str, entity_id: int | str, handler_id: int, token: str | None = None
    ) -> dict[str, Any]:
        """The event as the JSON view of D:api-reference/events/index.md shows it.

        OAuth tokens "are not passed to a webhook", so ``auth`` carries only the portal keys;
        Russian portals name ``oauth.bitrix24.tech`` as the server endpoint (RU twin page).
        """
        domain = self.portal.domain
        oauth = "oauth.bitrix24.tech" if domain.endswith(".ru") else "oauth.bitrix.info"
        return {
            "event": WIRE_EVENT_NAMES.get(event, event),
            "event_handler_id": str(handler_id),
            "data": event_data(event, entity_id),
            "ts": str(int(time.time())),
            "auth": {
                "domain": domain,
                "client_endpoint": f"https://{domain}/rest/",
                "server_endpoint": f"https://{oauth}/rest/",
                "member_id": self.portal.member_id,
                "application_token": token or self.portal.application_token,
            },
        }

    @staticmethod
    def send(
        url: str, payload: dict[str, Any], drop_keys: tuple[str, ...] = ()
    ) -> requests.Response:
        """POST the payload form-encoded with PHP bracket keys, as ``http_build_query`` does."""
        pairs = [(k, v) for k, v in flatten(payload) if k not in drop_keys]
        return requests.post(url, data=pairs, timeout=10)
