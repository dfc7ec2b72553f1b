"""An in-memory Bitrix24 portal served over real HTTP on loopback.

It answers the REST methods our connector uses (see :mod:`bridge.crms.bitrix24.sandbox.methods`) on
the incoming-webhook URL ``/rest/<user_id>/<code>/<method>``, with the documented envelope, list
extras, ``batch`` and error bodies, so that fast-bitrix24 talks to it unmodified. Like the
portal's "Outgoing webhook" it posts events (form-encoded, PHP bracket keys) to subscribed
handler URLs from a background thread, including the echo of changes made through REST.
Sources: /work/shared/reference/bitrix24.md and the ``D:`` pages cited next to each method.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import requests
from flask import Flask, Response, request

from bridge.crms.bitrix24.sandbox.events import EventDispatcher, Portal
from bridge.crms.bitrix24.sandbox.methods import METHODS, Call
from bridge.crms.bitrix24.sandbox.query import PORTAL_TZ, Reply, RestError, text
from bridge.crms.bitrix24.sandbox.store import DEAL, LEAD, PortalStore
from bridge.formdata import FormKeyError, parse_pairs, parse_query
from bridge.sandbox.server import LoopbackServer

BATCH_LIMIT = 50
_WEATHER_ERRORS = {
    "errors": ({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal error"}, 500),
    "rate_limited": (
        {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
        503,
    ),
}
# The operating limit sums each method's run time over 10 minutes (D:limits.md).
OPERATING_WINDOW = 600.0
_RESULT_REF = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")


@dataclass(frozen=True)
class Weather:
    """A portal's bad day: shares of REST calls that fail or answer too late.

    Attributes:
        errors: refused with 500 ``INTERNAL_SERVER_ERROR`` before running.
        rate_limited: refused with 503 ``QUERY_LIMIT_EXCEEDED`` before running.
        late: run (the write lands), then answered after ``late_seconds``: a client whose
            timeout is shorter sees a timeout for a write that happened.
        late_seconds: how late.
        seed: the dice's seed (a soak replays the same weather).
    """

    errors: float = 0.0
    rate_limited: float = 0.0
    late: float = 0.0
    late_seconds: float = 3.0
    seed: int = 0


@dataclass
class _Fault:
    method: str
    remaining: int
    status: int
    body: dict[str, str]


def _method_name(raw: str) -> str:
    # fast-bitrix24 lower-cases the method; the URL form may end in .json
    # (D:local-integrations/local-webhooks.md: `department.get.json?ID=42`).
    name = raw.strip().strip("/").lower()
    return name.removesuffix(".json")


def _lenient_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    # A malformed bracket key is dropped rather than failing the whole call.
    kept: list[tuple[str, str]] = []
    root: dict[str, Any] = {}
    for pair in pairs:
        try:
            root = parse_pairs([*kept, pair])
        except FormKeyError:
            continue
        kept.append(pair)
    return root


def _request_params() -> dict[str, Any]:
    """Merge query string and body (JSON, form or multipart) into one params dict."""
    params = _lenient_pairs(request.args.items(multi=True))
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update(_lenient_pairs(request.form.items(multi=True)))
    else:
        body = request.get_json(silent=True, force=True)
        if isinstance(body, dict):
            params.update(body)
    return params


class Bitrix24Sandbox:
    """A fake Bitrix24 portal: REST on an incoming-webhook URL, events to outgoing handlers."""

    def __init__(
        self,
        *,
        user_id: int = 1,
        webhook_code: str = "sandbox",
        application_token: str = "sandbox-app-token",
        domain: str = "sandbox.bitrix24.ru",
        member_id: str = "sandbox-member",
    ) -> None:
        self.user_id = user_id
        self.webhook_code = webhook_code
        self.application_token = application_token
        self.domain = domain
        self.member_id = member_id
        self.events = EventDispatcher(Portal(domain, member_id, application_token))
        self.store = PortalStore(domain=domain, emit=self.events.emit)
        # The webhook's creator always exists on a portal; add_user(user_id, ...) renames it.
        self.store.add_user(user_id, "Admin", "", "", True)
        self.requests_log: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        self.weather = Weather()
        self._dice = random.Random(0)
        self.weathered: dict[str, int] = {"errors": 0, "rate_limited": 0, "late": 0}
        self._operating: dict[str, deque[tuple[float, float]]] = {}
        self._server: LoopbackServer | None = None
        self.app = self._build_app()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Bitrix24Sandbox:
        """Serve on 127.0.0.1 (free port) and start the event-delivery thread."""
        self._server = LoopbackServer(self.app).start()
        self.events.start()
        return self

    def stop(self) -> None:
        """Stop delivering events and serving."""
        self.events.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def base_url(self) -> str:
        """The portal's address on loopback, e.g. ``http://127.0.0.1:40123``."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    @property
    def webhook_url(self) -> str:
        """The incoming-webhook URL, e.g. ``http://127.0.0.1:40123/rest/1/sandbox/``."""
        return f"{self.base_url}/rest/{self.user_id}/{self.webhook_code}/"

    @property
    def clock(self) -> Any:
        """Callable returning the portal's "now" (aware datetime); replace it to shift time."""
        return self.store.clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self.store.clock = value

    # --- seeding and inspection, as a person would in the portal UI --------------------------

    @property
    def deals(self) -> dict[int, dict[str, Any]]:
        """Deals by id (live records, UPPER_CASE fields)."""
        return self.store.deals

    @property
    def leads(self) -> dict[int, dict[str, Any]]:
        """Leads by id."""
        return self.store.leads

    @property
    def tasks(self) -> dict[int, dict[str, Any]]:
        """Tasks by id, UPPER_CASE as tasks.task.add takes them (UF_CRM_TASK included)."""
        return self.store.tasks

    @property
    def comments(self) -> dict[int, dict[str, Any]]:
        """Timeline comments by id."""
        return self.store.comments

    @property
    def activities(self) -> dict[int, dict[str, Any]]:
        """Activities by id."""
        return self.store.activities

    def add_user(
        self, id: int, name: str, last_name: str = "", email: str = "", active: bool = True
    ) -> None:
        """Add (or replace) an employee."""
        self.store.add_user(id, name, last_name, email, active)

    def add_pipeline(self, category_id: int, name: str, stages: list[tuple[str, str, str]]) -> None:
        """Create or replace a deal pipeline.

        Args:
            category_id: 0 replaces the general pipeline's stages; n > 0 makes ``DEAL_STAGE_n``.
            name: pipeline name.
            stages: ``(status_id, name, semantics)`` in kanban order; semantics ``P``/``S``/``F``.
                For n > 0 ids get the ``C<n>:`` prefix unless they already carry it
                (D:api-reference/crm/status/crm-status-add.md).
        """
        self.store.add_pipeline(category_id, name, stages)

    def add_userfield(
        self, entity: str, name: str, type: str, label: str, list: Iterable[str] | None = None
    ) -> list[dict[str, str]]:
        """Register a ``UF_CRM_*`` field on ``"deal"`` or ``"lead"``.

        Returns:
            The enumeration items ``[{"ID": "1", "VALUE": "..."}]`` (empty for other types);
            a deal stores the item ``ID``, not the text.
        """
        return self.store.add_userfield(entity, name, type, label, list)

    def add_deal(self, fields: Mapping[str, Any]) -> int:
        """Create a deal; the stage fills STAGE_SEMANTIC_ID, CATEGORY_ID, CLOSED, IS_NEW.

        Read-only fields (DATE_CREATE, MOVED_TIME...) may be given to backdate a deal.
        Posts ONCRMDEALADD when subscribed.
        """
        return self.store.add_crm(DEAL, fields, by_user=self.user_id, trusted=True)

    def update_deal(self, deal_id: int, fields: Mapping[str, Any], *, by_user: int = 1) -> None:
        """A manager's change in the UI; posts ONCRMDEALUPDATE when subscribed.

        Raises:
            KeyError: no such deal.
        """
        self.store.update_crm(DEAL, deal_id, fields, by_user=by_user, trusted=True)

    def add_lead(self, fields: Mapping[str, Any]) -> int:
        """Create a lead (STATUS_ID fills STATUS_SEMANTIC_ID); posts ONCRMLEADADD."""
        return self.store.add_crm(LEAD, fields, by_user=self.user_id, trusted=True)

    def update_lead(self, lead_id: int, fields: Mapping[str, Any], *, by_user: int = 1) -> None:
        """A manager's change to a lead; posts ONCRMLEADUPDATE.

        Raises:
            KeyError: no such lead.
        """
        self.store.update_crm(LEAD, lead_id, fields, by_user=by_user, trusted=True)

    def add_contact(self, name: str, last_name: str = "", email: str = "", phone: str = "") -> int:
        """Add a client (``crm.contact.get``); a deal names it in ``CONTACT_ID``."""
        return self.store.add_contact(name, last_name, email, phone, self.user_id)

    def add_activity(self, fields: Mapping[str, Any]) -> int:
        """Create an activity (OWNER_TYPE_ID 2, OWNER_ID, COMPLETED...); posts ONCRMACTIVITYADD."""
        return self.store.add_activity(fields, by_user=self.user_id)

    def update_activity(self, activity_id: int, fields: Mapping[str, Any]) -> None:
        """A manager completes a call or moves its deadline; posts ONCRMACTIVITYUPDATE.

        Raises:
            KeyError: no such activity.
        """
        self.store.update_activity(activity_id, fields, by_user=self.user_id)

    def tasks_for(self, entity: str) -> list[dict[str, Any]]:
        """Tasks bound to a CRM entity such as ``"D_12"`` (UF_CRM_TASK)."""
        with self.store.lock:
            return [dict(self.store.tasks[i]) for i in self.store.tasks_bound.get(entity, [])]

    def comments_for(self, entity_type: str, entity_id: int) -> list[dict[str, Any]]:
        """Timeline comments of ``("deal", 12)``."""
        wanted = (entity_type.lower(), str(entity_id))
        with self.store.lock:
            comments = self.store.comments.values()
            return [dict(c) for c in comments if (c["ENTITY_TYPE"], c["ENTITY_ID"]) == wanted]

    # --- outgoing webhooks -------------------------------------------------------------------

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """One ``{event, id, url, status, ts}`` per post (``error`` instead of a status)."""
        return self.events.deliveries

    def subscribe(self, event: str, handler_url: str) -> None:
        """Post ``event`` (e.g. ``ONCRMDEALUPDATE``) to ``handler_url`` from now on.

        D:local-integrations/local-webhooks.md, D:api-reference/events/index.md
        """
        self.events.subscribe(event, handler_url)

    def lose_every(self, n: int) -> None:
        """Lose every ``n``-th webhook (0: none), as the CRM does when the bridge is down or
        the network drops a post: it is recorded in ``deliveries`` and never sent."""
        self.events.poster.lose_every = n

    def wait_delivered(self, timeout: float = 10.0) -> None:
        """Block until the delivery queue is empty and in-flight posts have finished.

        Raises:
            TimeoutError: events still pending after ``timeout`` seconds.
        """
        self.events.wait(timeout)

    def post_event(
        self,
        event: str,
        entity_id: int | str,
        url: str,
        *,
        application_token: str | None = None,
        drop_keys: tuple[str, ...] = (),
    ) -> requests.Response:
        """Post one event synchronously (tests: a wrong token, missing keys).

        Args:
            event: event code, e.g. ``ONCRMDEALUPDATE``.
            entity_id: the id to put in the data block.
            url: handler URL.
            application_token: overrides the portal's token.
            drop_keys: form keys to leave out, e.g. ``("auth[application_token]",)``.
        """
        event = event.upper()
        handler_id = self.events.handler_id(event, url)
        payload = self.events.payload(event, entity_id, handler_id, application_token)
        return self.events.send(url, payload, drop_keys)

    # --- fault injection ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 503,
        error: str = "QUERY_LIMIT_EXCEEDED",
        description: str = "Too many requests",
    ) -> None:
        """Reject the next ``times`` HTTP calls of ``method`` (or batches that include it).

        The call is refused whole, before any processing, with ``status`` and the body
        ``{"error": error, "error_description": description}`` (D:_includes/system-errors.md).
        """
        body = {"error": error, "error_description": description}
        with self.store.lock:
            self._faults.append(_Fault(method.lower(), times, status, body))

    def set_weather(self, weather: Weather) -> None:
        """From now on, fail or delay a random share of REST calls (``Weather()``: none);
        ``weathered`` counts what the weather did.

        Bodies as D:_includes/system-errors.md gives them: a 500 ``INTERNAL_SERVER_ERROR``
        (a server failure) and a 503 ``QUERY_LIMIT_EXCEEDED`` (the rate limit).
        """
        with self.store.lock:
            self.weather, self._dice = weather, random.Random(weather.seed)

    def _roll(self) -> str:
        """What the weather does to this call: ``errors``, ``rate_limited``, ``late`` or ``""``."""
        weather = self.weather
        with self.store.lock:
            roll = self._dice.random()
            for what, share in (
                ("errors", weather.errors),
                ("rate_limited", weather.rate_limited),
                ("late", weather.late),
            ):
                if roll < share:
                    self.weathered[what] += 1
                    return what
                roll -= share
        return ""

    def _take_fault(self, method: str, params: Mapping[str, Any]) -> _Fault | None:
        involved = {method}
        if method == "batch":
            involved |= {_method_name(str(c).partition("?")[0]) for _, c in _commands(params)}
        with self.store.lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.method in involved:
                    fault.remaining -= 1
                    return fault
        return None

    # --- HTTP --------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        rest = "/rest/<user_id>/<code>/<path:method>"
        app.add_url_rule(rest, "rest", self._rest, methods=["GET", "POST"])
        app.add_url_rule("/rest/<path:method>", "no_auth", self._no_auth, methods=["GET", "POST"])
        return app

    def _json(self, body: Any, status: int = 200) -> Response:
        data = json.dumps(body, ensure_ascii=False)
        return Response(data, status=status, mimetype="application/json")

    def _no_auth(self, method: str) -> Response:
        # Neither a webhook path nor an `auth` token: D:_includes/system-errors.md
        return self._json(
            {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, 401
        )

    def _rest(self, user_id: str, code: str, method: str) -> Response:
        started = time.time()
        name, params = _method_name(method), _request_params()
        self._log(name, params)
        if user_id != str(self.user_id) or code != self.webhook_code:
            return self._no_auth(method)
        fault = self._take_fault(name, params)
        if fault is not None:
            return self._json(fault.body, fault.status)
        weather = self._roll()
        if weather in _WEATHER_ERRORS:
            return self._json(*_WEATHER_ERRORS[weather])
        if weather == "late":
            response = self._answer(name, params, started)
            time.sleep(self.weather.late_seconds)
            return response
        return self._answer(name, params, started)

    def _answer(self, name: str, params: dict[str, Any], started: float) -> Response:
        try:
            if name == "batch":
                body = {"result": self._batch(params)}
            else:
                body = self._envelope(self._run(name, params))
        except RestError as err:
            return self._json(err.body(), err.status)
        body["time"] = self._time(name, started)
        return self._json(body)

    def _log(self, method: str, params: Mapping[str, Any], *, batch: bool = False) -> None:
        entry: dict[str, Any] = {"time": time.monotonic(), "method": method, "params": params}
        if batch:
            entry["batch"] = True
        with self.store.lock:
            self.requests_log.append(entry)

    def _run(self, method: str, params: dict[str, Any]) -> Reply:
        handler = METHODS.get(method)
        if handler is None:
            # REST answers an unknown method with 404 ERROR_METHOD_NOT_FOUND
            # (D:api-reference/rest-v3.md); the text is what portals send ("Method not found!").
            raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        with self.store.lock:
            return handler(self.store, Call(params, self.user_id))

    @staticmethod
    def _envelope(reply: Reply) -> dict[str, Any]:
        # List methods add `total` and `next`.
        # D:settings/how-to-call-rest-api/list-methods-pecularities.md
        body: dict[str, Any] = {"result": reply.result}
        if reply.next is not None:
            body["next"] = reply.next
        if reply.total is not None:
            body["total"] = reply.total
        return body

    def _time(self, method: str, started: float, *, operating: bool = True) -> dict[str, Any]:
        """The ``time`` block of D:api-reference/data-types.md#time."""
        finish = time.time()
        spent = finish - started
        block: dict[str, Any] = {"start": started, "finish": finish, "duration": spent}
        block["processing"] = spent
        block["date_start"] = datetime.fromtimestamp(started, PORTAL_TZ).isoformat(
            timespec="seconds"
        )
        block["date_finish"] = datetime.fromtimestamp(finish, PORTAL_TZ).isoformat(
            timespec="seconds"
        )
        if operating:
            with self.store.lock:
                history = self._operating.setdefault(method, deque())
                history.append((finish, spent))
                while history and history[0][0] < finish - OPERATING_WINDOW:
                    history.popleft()
                block["operating_reset_at"] = int(history[0][0] + OPERATING_WINDOW)
                block["operating"] = sum(s for _, s in history)
        return block

    # --- batch -------------------------------------------------------------------------------

    # D:settings/how-to-call-rest-api/batch.md
    def _batch(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run sub-commands in order. D:settings/how-to-call-rest-api/batch.md

        Errors go to ``result_error`` per command (the HTTP status stays 200); ``halt`` stops
        at the first one; commands past the 50th fail with ERROR_BATCH_LENGTH_EXCEEDED.
        """
        halt = text(_param(params, "halt")).lower() in ("1", "true", "y")
        out: dict[str, dict[str, Any]] = {
            k: {} for k in ("result", "error", "total", "next", "time")
        }
        for index, (key, command) in enumerate(_commands(params)):
            started = time.time()
            try:
                if index >= BATCH_LIMIT:
                    raise RestError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
                name, reply = self._sub_command(str(command), out["result"])
            except RestError as err:
                out["error"][key] = err.body()
                if halt:
                    break
                continue
            out["result"][key] = reply.result
            if reply.total is not None:
                out["total"][key] = reply.total
            if reply.next is not None:
                out["next"][key] = reply.next
            out["time"][key] = self._time(name, started, operating=False)
        # PHP serialises an empty array as [], a filled one as an object.
        return {("result" if k == "result" else f"result_{k}"): v or [] for k, v in out.items()}

    def _sub_command(self, command: str, results: Mapping[str, Any]) -> tuple[str, Reply]:
        raw_method, _, query = command.partition("?")
        name = _method_name(raw_method)
        try:
            parsed = parse_query(query)
        except FormKeyError:
            parsed = _lenient_pairs(parse_qsl(query, keep_blank_values=True))
        params = _substitute(parsed, results)
        self._log(name, params, batch=True)
        if name == "batch":
            # Nesting is forbidden since rest 24.0.0.
            raise RestError(
                405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"
            )
        return name, self._run(name, params)


def _param(params: Mapping[str, Any], name: str) -> Any:
    return next((v for k, v in params.items() if k.lower() == name), None)


def _commands(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    cmd = _param(params, "cmd")
    if isinstance(cmd, dict):
        return [(str(k), v) for k, v in cmd.items()]
    if isinstance(cmd, list):
        return [(str(i), v) for i, v in enumerate(cmd)]
    return []


def _substitute(value: Any, results: Mapping[str, Any]) -> Any:
    """Resolve ``$result[cmd][field]...`` from earlier commands (linked calls)."""
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if not isinstance(value, str) or "$result[" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        node: Any = results.get(match.group(1))
        for part in re.findall(r"\[([^\]]*)\]", match.group(2)):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return match.group(0)
        return text(node)

    return _RESULT_REF.sub(lookup, value)
