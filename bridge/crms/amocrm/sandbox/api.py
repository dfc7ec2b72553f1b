"""HTTP face of the amoCRM sandbox: OAuth, API v4 routes, faults, rate limit, request log.

Each route names the amoCRM page it follows (the reference quotes them). Success bodies are
``application/hal+json``, errors ``application/problem+json`` (reference §2.0); an empty result
is ``204`` without a body (§3.2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from bridge.crms.amocrm.sandbox.data import (
    MAX_LIMIT,
    TASK_TYPES,
    ApiError,
    fault_body,
    oauth_error,
    problem,
    too_many,
)
from bridge.crms.amocrm.sandbox.entities import EntityRoutes, hal
from bridge.crms.amocrm.sandbox.query import links, paginate, parse_args, values

if TYPE_CHECKING:
    from bridge.crms.amocrm.sandbox import AmoCRMSandbox


def error_response(err: ApiError) -> Response:
    """An :class:`ApiError` on the wire (an HTML page as text/html)."""
    if isinstance(err.body, str):
        return Response(err.body, status=err.status, mimetype="text/html")
    return hal(err.body, err.status)


class ApiRoutes(EntityRoutes):
    """Routes bound to one sandbox."""

    def __init__(self, sandbox: AmoCRMSandbox) -> None:
        self.sb = sandbox
        self.store = sandbox.store

    def build(self) -> Flask:
        """The Flask app with every route, hook and error handler."""
        app = Flask(__name__)
        app.before_request(self._gate)
        app.after_request(self._log)
        app.register_error_handler(ApiError, error_response)
        app.register_error_handler(HTTPException, self._http_error)
        rules: list[tuple[str, Callable[..., Response], list[str]]] = [
            ("/oauth2/access_token", self.access_token, ["POST"]),
            ("/oauth2/account/current/subdomain", self.current_subdomain, ["GET"]),
            ("/api/v4/account", self.account, ["GET"]),
            ("/api/v4/leads", self.leads, ["GET", "PATCH"]),
            ("/api/v4/leads/<int:lead_id>", self.lead, ["GET", "PATCH"]),
            ("/api/v4/leads/custom_fields", self.custom_fields, ["GET"]),
            ("/api/v4/leads/pipelines", self.pipelines, ["GET"]),
            ("/api/v4/leads/pipelines/<int:pipeline_id>", self.pipeline, ["GET"]),
            ("/api/v4/leads/pipelines/<int:pipeline_id>/statuses", self.statuses, ["GET"]),
            ("/api/v4/leads/loss_reasons", self.loss_reasons, ["GET"]),
            ("/api/v4/leads/loss_reasons/<int:reason_id>", self.loss_reason, ["GET"]),
            ("/api/v4/leads/notes", self.notes, ["GET", "POST"]),
            ("/api/v4/leads/<int:lead_id>/notes", self.notes, ["GET", "POST"]),
            ("/api/v4/leads/notes/<int:note_id>", self.note, ["GET"]),
            ("/api/v4/contacts/<int:contact_id>", self.contact, ["GET"]),
            ("/api/v4/tasks", self.tasks, ["GET", "POST", "PATCH"]),
            ("/api/v4/tasks/<int:task_id>", self.task, ["GET", "PATCH"]),
            ("/api/v4/users", self.users, ["GET"]),
            ("/api/v4/users/<int:user_id>", self.user, ["GET"]),
            ("/api/v4/webhooks", self.webhooks, ["GET", "POST", "DELETE"]),
            ("/api/v4/events", self.events, ["GET"]),
        ]
        for rule, view, methods in rules:
            app.add_url_rule(rule, view_func=view, methods=methods, endpoint=rule)
        return app

    # --- around every request ----------------------------------------------------------------

    def _gate(self) -> Response | None:
        """A stall, then injected faults, then the rate limit and the token (API paths only)."""
        while self.sb.stalled.is_set():  # the account stops answering (a hung CRM)
            time.sleep(0.05)
        fault = self.sb.faults.take(request.path)
        if fault is not None:
            body = (
                fault.body
                if fault.body is not None
                else fault_body(fault.status, self.sb.retry_after)
            )
            return error_response(ApiError(fault.status, body))
        if not request.path.startswith("/api/"):
            return None
        # https://www.amocrm.ru/developers/content/api/recommendations: 7 requests/s per
        # integration (reference §3.1); all tokens of the sandbox belong to one integration.
        if not self.sb.rate_window.admit():
            return error_response(too_many(self.sb.retry_after))
        g.owner = self.sb.oauth.owner(request.headers.get("Authorization"))
        return None

    def _log(self, response: Response) -> Response:
        entry = {"time": time.monotonic(), "method": request.method, "path": request.path}
        entry["status"] = response.status_code
        with self.store.lock:
            self.sb.requests_log.append(entry)
        return response

    @staticmethod
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        return hal(problem(status, err.description or ""), status)

    def _args(self) -> dict[str, Any]:
        return parse_args(list(request.args.items(multi=True)))

    def _with(self) -> set[str]:
        return set(values(self._args().get("with")))

    def _collection(
        self, name: str, items: list[Mapping[str, Any]], maximum: int = MAX_LIMIT
    ) -> Response:
        args = self._args()
        page_items, page, more = paginate(items, args, maximum)
        if not page_items:
            return Response(status=204)
        pairs = list(request.args.items(multi=True))
        body = {"_links": links(self.sb.base_url, request.path, pairs, page, more)}
        body["_embedded"] = {name: list(page_items)}
        return hal(body)

    # --- OAuth -------------------------------------------------------------------------------

    def access_token(self) -> Response:
        """POST /oauth2/access_token."""
        # https://www.amocrm.ru/developers/content/oauth/step-by-step
        body = request.get_json(silent=True, force=True)
        return hal(self.sb.oauth.exchange(body))

    def current_subdomain(self) -> Response:
        """GET /oauth2/account/current/subdomain."""
        # https://www.amocrm.ru/developers/content/oauth/account-subdomain-info
        if not self.sb.oauth.refresh_token_live(request.headers.get("X-Refresh-Token")):
            raise oauth_error(401, "Token has been revoked", "The refresh token is invalid.")
        account = {"id": self.sb.account_id, "subdomain": self.sb.subdomain}
        return hal({**account, "domain": "amocrm.ru", "top_level_domain": "ru"})

    # --- account, users, pipelines, loss reasons, fields -------------------------------------

    def account(self) -> Response:
        """GET /api/v4/account."""
        # https://www.amocrm.ru/developers/content/crm_platform/account-info
        with_ = self._with()
        body: dict[str, Any] = {"id": self.sb.account_id, "subdomain": self.sb.subdomain}
        body["current_user_id"] = g.owner
        body["is_loss_reason_enabled"] = bool(self.store.loss_reasons)
        embedded: dict[str, Any] = {}
        if "task_types" in with_:
            embedded["task_types"] = [dict(t) for t in TASK_TYPES]
        if "datetime_settings" in with_:
            embedded["datetime_settings"] = {"timezone": self.store.tz.key}
        if embedded:
            body["_embedded"] = embedded
        return hal(body)

    def users(self) -> Response:
        """GET /api/v4/users."""
        # https://www.amocrm.ru/developers/content/crm_platform/users-api
        with self.store.lock:
            return self._collection(
                "users", [self.store.users[k] for k in sorted(self.store.users)]
            )

    def user(self, user_id: int) -> Response:
        """GET /api/v4/users/{id}; 204 when there is none."""
        with self.store.lock:
            found = self.store.users.get(user_id)
            return hal(found) if found else Response(status=204)

    def contact(self, contact_id: int) -> Response:
        """GET /api/v4/contacts/{id}[?with=leads]; 204 when there is none."""
        # https://www.amocrm.ru/developers/content/crm_platform/contacts-api
        with self.store.lock:
            found = self.store.contacts.get(contact_id)
            return (
                hal(self.store.render_contact(found, self._with()))
                if found
                else Response(status=204)
            )

    def pipelines(self) -> Response:
        """GET /api/v4/leads/pipelines."""
        # https://www.amocrm.ru/developers/content/crm_platform/leads_pipelines
        with self.store.lock:
            return self._collection("pipelines", list(self.store.pipelines.values()))

    def pipeline(self, pipeline_id: int) -> Response:
        """GET /api/v4/leads/pipelines/{id}."""
        with self.store.lock:
            found = self.store.pipelines.get(pipeline_id)
            return hal(found) if found else Response(status=204)

    def statuses(self, pipeline_id: int) -> Response:
        """GET /api/v4/leads/pipelines/{id}/statuses."""
        with self.store.lock:
            found = self.store.pipelines.get(pipeline_id)
            items = found["_embedded"]["statuses"] if found else []
            return self._collection("statuses", items)

    def loss_reasons(self) -> Response:
        """GET /api/v4/leads/loss_reasons."""
        # https://developers.kommo.com/reference/loss-reasons
        with self.store.lock:
            items = [self.store.loss_reasons[k] for k in sorted(self.store.loss_reasons)]
            return self._collection("loss_reasons", items)

    def loss_reason(self, reason_id: int) -> Response:
        """GET /api/v4/leads/loss_reasons/{id}."""
        with self.store.lock:
            found = self.store.loss_reasons.get(reason_id)
            return hal(found) if found else Response(status=204)

    def custom_fields(self) -> Response:
        """GET /api/v4/leads/custom_fields."""
        # https://www.amocrm.ru/developers/content/crm_platform/custom-fields
        with self.store.lock:
            return self._collection("custom_fields", self.store.fields.definitions())
