"""An in-memory amoCRM account served over real HTTP on loopback.

It speaks the API v4 subset our connector uses (leads, contacts, tasks, notes, pipelines, loss
reasons, users, custom fields, webhooks, events) with OAuth 2.0 tokens, the documented shapes,
204 for empty results and the documented error bodies, and it posts account webhooks (form-encoded,
PHP bracket keys, the legacy entity shape) from a background thread, as a real account does.
``base_url`` stands for ``https://<subdomain>.amocrm.ru``. Sources: /work/shared/reference/
amocrm.md and the amoCRM pages cited next to each route and shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests

from bridge.crms.amocrm.sandbox.api import ApiRoutes
from bridge.crms.amocrm.sandbox.auth import OAuthServer
from bridge.crms.amocrm.sandbox.hooks import ANSWER_TIMEOUT, HookHub
from bridge.crms.amocrm.sandbox.store import AccountStore
from bridge.sandbox.common import FaultBook, Poster, RateWindow
from bridge.sandbox.server import LoopbackServer

# https://www.amocrm.ru/developers/content/api/recommendations (reference §3.1).
INTEGRATION_RATE = 7
# https://www.amocrm.ru/developers/content/crm_platform/account-info: datetime_settings.timezone.
ACCOUNT_TZ = "Europe/Moscow"


class AmoCRMSandbox:
    """A fake amoCRM account: API v4 with OAuth, account webhooks to subscribed handlers."""

    def __init__(
        self,
        *,
        subdomain: str = "sandbox",
        account_id: int = 30000001,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        redirect_uri: str = "https://bridge.example/oauth/amocrm",
        access_ttl: int = 86400,
        admin_id: int = 1,
    ) -> None:
        self.subdomain = subdomain
        self.account_id = account_id
        self.admin_id = admin_id
        #: The account's unix time; replace it (e.g. ``lambda: t``) to move time forward.
        self.clock: Callable[[], float] = time.time
        #: Seconds an automatic or injected 429 asks the client to wait (``retry_after``).
        self.retry_after = 1
        self.requests_log: list[dict[str, Any]] = []
        self.faults = FaultBook()
        #: While set, every API call waits without an answer (a hung account).
        self.stalled = threading.Event()
        self.rate_window = RateWindow(INTEGRATION_RATE)
        self._server: LoopbackServer | None = None
        self._poster = Poster("amocrm-hooks", ANSWER_TIMEOUT)
        self.hooks = HookHub(self._account_block, self._poster)
        self.store = AccountStore(
            **{"account_id": account_id, "subdomain": subdomain, "admin_id": admin_id},
            clock=lambda: self.clock(),
            emit=self.hooks.emit,
            tz=ZoneInfo(ACCOUNT_TZ),
        )
        self.oauth = OAuthServer(
            **{"client_id": client_id, "client_secret": client_secret},
            **{"redirect_uri": redirect_uri, "access_ttl": access_ttl},
            clock=lambda: self.clock(),
            api_domain=self._api_domain,
        )
        # The account's admin installs integrations and owns their tokens.
        self.store.add_user(admin_id, "Admin", "", True, True)
        self.app = ApiRoutes(self).build()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> AmoCRMSandbox:
        """Serve on 127.0.0.1 (a free port) and start posting webhooks."""
        self._server = LoopbackServer(self.app).start()
        self._poster.start()
        return self

    def stop(self) -> None:
        """Post what is queued, then stop posting and serving."""
        self._poster.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def base_url(self) -> str:
        """The account's address on loopback, e.g. ``http://127.0.0.1:40123``.

        Raises:
            RuntimeError: the sandbox is not started.
        """
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    @property
    def rate_limit(self) -> int | None:
        """Requests per second admitted to /api/v4 (7 as documented; ``None`` = unlimited)."""
        return self.rate_window.limit

    @rate_limit.setter
    def rate_limit(self, value: int | None) -> None:
        self.rate_window = RateWindow(value)

    def _api_domain(self) -> str:
        # The JWT's api_domain names the host to call (reference §2.11): here, the loopback one.
        if self._server is None:
            return f"{self.subdomain}.amocrm.ru"
        return urlsplit(self._server.url).netloc

    def _account_block(self) -> dict[str, Any]:
        # account[_links][self] is the account's address; integrations take their API base from
        # it (reference §2.0), so the sandbox gives its own.
        home = self._server.url if self._server else f"https://{self.subdomain}.amocrm.ru"
        return {"subdomain": self.subdomain, "id": self.account_id, "_links": {"self": home}}

    # --- OAuth -------------------------------------------------------------------------------

    def issue_code(self, user_id: int | None = None) -> str:
        """An authorization code (20 minutes, single-use), as the admin gets on install."""
        return self.oauth.issue_code(self.admin_id if user_id is None else user_id)

    def long_lived_token(self, days: int = 365, user_id: int | None = None) -> str:
        """A long-lived access token (a JWT, no refresh token), as the «Ключи» tab shows."""
        return self.oauth.long_lived(self.admin_id if user_id is None else user_id, days)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens live)."""
        self.oauth.expire_all()

    @property
    def refresh_log(self) -> list[dict[str, Any]]:
        """Every ``grant_type=refresh_token`` request: ``{time, refresh_token, ok}``."""
        return self.oauth.refresh_log

    # --- seeding and inspection, as an admin would in the UI ---------------------------------

    def add_user(self, id: int, name: str, email: str = "", *, active: bool = True) -> None:
        """Add (or replace) a user; ``add_user(admin_id, ...)`` renames the admin."""
        self.store.add_user(id, name, email, active, id == self.admin_id)

    def add_pipeline(self, id: int, name: str, statuses: list[tuple[int, str]]) -> None:
        """Create or replace a pipeline; 142 (won) and 143 (lost) are appended.

        Args:
            id: pipeline id; the first pipeline added is the main one.
            name: pipeline name.
            statuses: ``(status_id, name)`` in kanban order (an unsorted stage is not added).
        """
        self.store.add_pipeline(id, name, statuses)

    def add_contact(self, id: int, name: str, *, email: str = "", phone: str = "") -> None:
        """Add a contact (``GET /api/v4/contacts/{id}``); link it to a lead with
        ``add_lead({..., "_embedded": {"contacts": [{"id": id, "is_main": True}]}})``."""
        self.store.add_contact(id, name, email, phone)

    def add_loss_reason(self, id: int, name: str) -> None:
        """Add a loss reason (``GET /api/v4/leads/loss_reasons``)."""
        self.store.add_loss_reason(id, name)

    def add_custom_field(
        self,
        id: int,
        name: str,
        type: str = "text",
        enums: list[tuple[int, str]] | None = None,
        *,
        code: str | None = None,
    ) -> None:
        """Define a lead custom field; ``enums`` are ``(enum_id, value)`` for select types."""
        with self.store.lock:
            self.store.fields.add(id, name, type, enums, code)

    def add_lead(self, fields: Mapping[str, Any]) -> int:
        """Create a lead from v4-shaped fields; posts ``leads[add]`` when subscribed.

        ``pipeline_id``/``status_id`` default to the main pipeline's first stage,
        ``responsible_user_id``/``created_by`` to the admin; ``created_at``/``updated_at``
        backdate it; ``_embedded`` may give ``contacts``/``companies``.

        Raises:
            ValueError: fields the API would refuse (unknown stage, user, custom field...).
        """
        with self.store.lock:
            changes = self._checked(fields, None)
            return self.store.create_lead(changes, changes.get("created_by", self.admin_id))["id"]

    def update_lead(
        self, lead_id: int, fields: Mapping[str, Any], *, by_user: int | None = None
    ) -> None:
        """A user's change in the UI; posts ``leads[update]``, and ``leads[status]`` (with
        ``old_status_id``/``old_pipeline_id``) when the stage changed.

        Raises:
            KeyError: no such lead.
            ValueError: fields the API would refuse.
        """
        with self.store.lock:
            lead = self.store.leads[lead_id]
            changes = self._checked(fields, lead)
            self.store.update_lead(lead, changes, self.admin_id if by_user is None else by_user)

    def _checked(self, fields: Mapping[str, Any], lead: Mapping[str, Any] | None) -> dict:
        changes, failures, errors = self.store.check_lead(fields, "0", lead, seed=True)
        if failures or errors:
            raise ValueError(f"lead refused: {failures or errors}")
        return changes

    @property
    def leads(self) -> dict[int, dict[str, Any]]:
        """Leads by id (live records in the v4 read shape)."""
        return self.store.leads

    @property
    def tasks(self) -> dict[int, dict[str, Any]]:
        """Tasks by id (live records)."""
        return self.store.tasks

    @property
    def notes(self) -> dict[int, dict[str, Any]]:
        """Notes by id (live records)."""
        return self.store.notes

    def tasks_for(self, lead_id: int) -> list[dict[str, Any]]:
        """Tasks bound to a lead, in creation order."""
        return self.store.tasks_of_lead(lead_id)

    def notes_for(self, lead_id: int) -> list[dict[str, Any]]:
        """Notes of a lead, in creation order."""
        return self.store.notes_of_lead(lead_id)

    # --- webhooks ----------------------------------------------------------------------------

    def subscribe(self, handler_url: str, events: list[str]) -> None:
        """Post ``events`` (API codes such as ``status_lead``) to ``handler_url``.

        One hook for many events, as ``POST /api/v4/webhooks`` makes; subscribing the same URL
        again replaces its events and re-enables it.

        Raises:
            ValueError: an event code the sandbox does not post.
        """
        self.hooks.subscribe(handler_url, list(events))

    def lose_every(self, n: int) -> None:
        """Lose every ``n``-th webhook (0: none), as the CRM does when the bridge is down or
        the network drops a post: it is recorded in ``deliveries`` and never sent."""
        self._poster.lose_every = n

    def wait_delivered(self, timeout: float = 10.0) -> None:
        """Block until every queued webhook has been posted.

        Raises:
            TimeoutError: posts still pending after ``timeout`` seconds.
        """
        self._poster.wait(timeout)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """One ``{url, events, ids, body, status, time}`` per post (``error`` when no answer)."""
        return self._poster.deliveries

    def post_webhook(self, url: str, body_pairs: list[tuple[str, str]]) -> requests.Response:
        """Post raw form pairs synchronously, as the account would (tests: odd bodies)."""
        return self._poster.send(url, urlencode(body_pairs, quote_via=quote))

    @contextmanager
    def batch_webhook(self) -> Iterator[None]:
        """Collect the changes made inside and post them as ONE request per hook
        (``leads[status][0]``, ``leads[status][1]``...), as amoCRM groups them."""
        with self.hooks.batch():
            yield

    # --- faults ------------------------------------------------------------------------------

    def fail_next(
        self, path_prefix: str, times: int = 1, *, status: int = 429, body: Any = None
    ) -> None:
        """Refuse the next ``times`` requests whose path starts with ``path_prefix``.

        Args:
            path_prefix: e.g. ``/api/v4/tasks`` or ``/oauth2/access_token``.
            times: how many requests to refuse.
            status: 429 gets the documented problem body with ``retry_after``; 403 nginx's
                HTML page (a blocked account); 402/5xx a problem body.
            body: a dict (JSON) or str (HTML) to send instead.
        """
        self.faults.add(path_prefix, times, status, body)
