"""Lead, task, note, webhook and event routes of the amoCRM sandbox (a mixin of ``ApiRoutes``).

Writes take a JSON array (reference §2.0), are validated whole before anything changes, and
answer ``_embedded.<entity>[{id, request_id}]``; ``request_id`` echoes the one sent or the
item's index («Строка переданная при запросе или порядковый указатель»).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Response, g, request

from bridge.crms.amocrm.sandbox.data import (
    HAL_JSON,
    HOOK_KEYS,
    MAX_EVENTS_LIMIT,
    MAX_LIMIT,
    NOT_A_CHOICE,
    PROBLEM_JSON,
    WRONG_TYPE,
    ApiError,
    invalid_body,
    problem,
    validation_error,
)
from bridge.crms.amocrm.sandbox.query import (
    event_filter,
    lead_filter,
    note_filter,
    order,
    task_filter,
    values,
)
from bridge.crms.amocrm.sandbox.store import AccountStore, Failure, is_int, missing

if TYPE_CHECKING:
    from bridge.crms.amocrm.sandbox import AmoCRMSandbox


def hal(body: Any, status: int = 200) -> Response:
    """A JSON answer; errors go out as problem+json."""
    mimetype = HAL_JSON if status < 400 else PROBLEM_JSON
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)


def json_body() -> Any:
    """The request's JSON body.

    Raises:
        ApiError: 400 "Invalid request body" when it is not JSON.
    """
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise ApiError(400, problem(400, "Invalid request body"))
    return body


def batch_items(body: Any) -> list[Any]:
    """A batch write body: a JSON array of at most 250 items (reference §2.0, §3.1)."""
    if not isinstance(body, list):
        raise ApiError(400, problem(400, "Invalid request body"))
    if len(body) > MAX_LIMIT:
        raise ApiError(422, problem(422, f"Limite de {MAX_LIMIT} por página"))
    return body


def request_id(item: Any, index: int) -> str:
    """The echoed ``request_id``: the one sent, else the item's index."""
    if isinstance(item, Mapping) and "request_id" in item:
        return str(item["request_id"])
    return str(index)


def _single(body: Any, entity_id: int) -> list[dict[str, Any]]:
    if not isinstance(body, Mapping):
        raise ApiError(400, problem(400, "Invalid request body"))
    return [{**body, "id": entity_id}]


def _target(item: Any, rid: str, found: Mapping[int, Any]) -> tuple[Any, Failure | None]:
    """The stored entity an update item names by ``id``."""
    entity_id = item.get("id") if isinstance(item, Mapping) else None
    if entity_id is None:
        return None, missing(rid, "id")
    entity = found.get(entity_id) if is_int(entity_id) else None
    if entity is None:
        return None, (rid, NOT_A_CHOICE[0], "id", NOT_A_CHOICE[1])
    return entity, None


class EntityRoutes:
    """Handlers of the entity routes; ``ApiRoutes`` supplies the helpers declared here."""

    sb: AmoCRMSandbox
    store: AccountStore

    def _args(self) -> dict[str, Any]:
        raise NotImplementedError

    def _with(self) -> set[str]:
        raise NotImplementedError

    def _collection(self, name: str, items: list[Any], maximum: int = MAX_LIMIT) -> Response:
        raise NotImplementedError

    def _filter(self) -> Mapping[str, Any]:
        filt = self._args().get("filter")
        return filt if isinstance(filt, Mapping) else {}

    # --- leads -------------------------------------------------------------------------------

    def leads(self) -> Response:
        """GET (filter, order, with) and batch PATCH of /api/v4/leads."""
        # https://www.amocrm.ru/developers/content/crm_platform/leads-api
        # https://www.amocrm.ru/developers/content/crm_platform/filters-api
        if request.method == "PATCH":
            results = self._patch_leads(batch_items(json_body()))
            return hal({"_embedded": {"leads": results}})
        match, with_ = lead_filter(self._filter()), self._with()
        with self.store.lock:
            found = [lead for _, lead in sorted(self.store.leads.items()) if match(lead)]
            found = order(found, self._args(), ("id", "created_at", "updated_at"))
            rendered = [self.store.render_lead(lead, with_) for lead in found]
        return self._collection("leads", rendered)

    def lead(self, lead_id: int) -> Response:
        """GET /api/v4/leads/{id}[?with=contacts,loss_reason] (204 if missing) and PATCH."""
        # https://www.amocrm.ru/developers/content/crm_platform/leads-api
        if request.method == "PATCH":
            result = self._patch_leads(_single(json_body(), lead_id))[0]
            return hal({k: v for k, v in result.items() if k != "request_id"})
        with self.store.lock:
            lead = self.store.leads.get(lead_id)
            if lead is None:
                return Response(status=204)
            return hal(self.store.render_lead(lead, self._with()))

    def _patch_leads(self, items: list[Any]) -> list[dict[str, Any]]:
        with self.store.lock:
            plans, failures, errors = [], [], {}
            for index, item in enumerate(items):
                rid = request_id(item, index)
                lead, failure = _target(item, rid, self.store.leads)
                if failure is not None:
                    failures.append(failure)
                    continue
                changes, bad, errs = self.store.check_lead(item, rid, lead)
                failures, errors = failures + bad, errors | errs
                plans.append((rid, lead, changes))
            if failures:
                raise validation_error(failures)
            if errors:
                raise invalid_body(errors)
            for _, lead, changes in plans:
                self.store.update_lead(lead, changes, g.owner)
            return [
                {"id": lead["id"], "updated_at": lead["updated_at"], "request_id": rid}
                for rid, lead, _ in plans
            ]

    # --- tasks -------------------------------------------------------------------------------

    def tasks(self) -> Response:
        """GET, POST and batch PATCH of /api/v4/tasks."""
        # https://www.amocrm.ru/developers/content/crm_platform/tasks-api
        if request.method == "POST":
            return hal({"_embedded": {"tasks": self._add_tasks(batch_items(json_body()))}})
        if request.method == "PATCH":
            return hal({"_embedded": {"tasks": self._patch_tasks(batch_items(json_body()))}})
        match = task_filter(self._filter())
        with self.store.lock:
            found = [dict(t) for _, t in sorted(self.store.tasks.items()) if match(t)]
        allowed = ("id", "complete_till", "created_at", "updated_at")
        return self._collection("tasks", order(found, self._args(), allowed))

    def task(self, task_id: int) -> Response:
        """GET /api/v4/tasks/{id} (204 if missing) and PATCH (e.g. complete with a result)."""
        # https://www.amocrm.ru/developers/content/crm_platform/tasks-api
        if request.method == "PATCH":
            result = self._patch_tasks(_single(json_body(), task_id))[0]
            return hal({k: v for k, v in result.items() if k != "request_id"})
        with self.store.lock:
            task = self.store.tasks.get(task_id)
            return hal(dict(task)) if task else Response(status=204)

    def _add_tasks(self, items: list[Any]) -> list[dict[str, Any]]:
        with self.store.lock:
            checked, failures = [], []
            for index, item in enumerate(items):
                rid = request_id(item, index)
                fields, bad = self.store.check_task(item, rid, new=True)
                checked.append((rid, fields))
                failures += bad
            if failures:
                raise validation_error(failures)
            made = [(rid, self.store.create_task(fields, g.owner)) for rid, fields in checked]
            return [{"id": task["id"], "request_id": rid} for rid, task in made]

    def _patch_tasks(self, items: list[Any]) -> list[dict[str, Any]]:
        with self.store.lock:
            plans, failures = [], []
            for index, item in enumerate(items):
                rid = request_id(item, index)
                task, failure = _target(item, rid, self.store.tasks)
                if failure is not None:
                    failures.append(failure)
                    continue
                fields, bad = self.store.check_task(item, rid, new=False)
                failures += bad
                plans.append((rid, task, fields))
            if failures:
                raise validation_error(failures)
            for _, task, fields in plans:
                self.store.update_task(task, fields, g.owner)
            return [
                {"id": task["id"], "updated_at": task["updated_at"], "request_id": rid}
                for rid, task, _ in plans
            ]

    # --- notes -------------------------------------------------------------------------------

    def notes(self, lead_id: int | None = None) -> Response:
        """GET and POST of /api/v4/leads/notes and /api/v4/leads/{id}/notes."""
        # https://www.amocrm.ru/developers/content/crm_platform/events-and-notes
        if request.method == "POST":
            return hal({"_embedded": {"notes": self._add_notes(batch_items(json_body()), lead_id)}})
        filt = dict(self._filter())
        if lead_id is not None:
            filt["entity_id"] = str(lead_id)
        match = note_filter(filt)
        with self.store.lock:
            found = [dict(n) for _, n in sorted(self.store.notes.items()) if match(n)]
        return self._collection("notes", order(found, self._args(), ("id", "updated_at")))

    def note(self, note_id: int) -> Response:
        """GET /api/v4/leads/notes/{id} (204 if missing)."""
        # https://www.amocrm.ru/developers/content/crm_platform/events-and-notes
        with self.store.lock:
            note = self.store.notes.get(note_id)
            return hal(dict(note)) if note else Response(status=204)

    def _add_notes(self, items: list[Any], lead_id: int | None) -> list[dict[str, Any]]:
        with self.store.lock:
            checked, failures = [], []
            for index, item in enumerate(items):
                rid = request_id(item, index)
                fields, bad = self.store.check_note(item, rid, lead_id)
                checked.append((rid, fields))
                failures += bad
            if failures:
                raise validation_error(failures)
            made = [(rid, self.store.create_note(fields, g.owner)) for rid, fields in checked]
            return [
                {"id": note["id"], "entity_id": note["entity_id"], "request_id": rid}
                for rid, note in made
            ]

    # --- webhooks and events -----------------------------------------------------------------

    def webhooks(self) -> Response:
        """GET (``filter[destination]``), POST (201) and DELETE (204) of /api/v4/webhooks."""
        # https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
        if request.method == "GET":
            destination = values(self._filter().get("destination"))
            hooks = self.sb.hooks.listing(destination[0] if destination else None)
            return self._collection("webhooks", hooks)
        body = json_body()
        destination = body.get("destination") if isinstance(body, Mapping) else None
        if not isinstance(destination, str) or not destination:
            raise validation_error([missing("0", "destination")])
        if request.method == "DELETE":
            self.sb.hooks.unsubscribe(destination)
            return Response(status=204)
        settings, sort = body.get("settings"), body.get("sort", 10)
        if not isinstance(settings, list) or not is_int(sort):
            path = "sort" if isinstance(settings, list) else "settings"
            raise validation_error([("0", WRONG_TYPE[0], path, WRONG_TYPE[1])])
        bad = [
            i
            for i, code in enumerate(settings)
            if not (isinstance(code, str) and code in HOOK_KEYS)
        ]
        if bad:
            raise validation_error(
                [("0", NOT_A_CHOICE[0], f"settings.{i}", NOT_A_CHOICE[1]) for i in bad]
            )
        return hal(self.sb.hooks.subscribe(destination, settings, sort), 201)

    def events(self) -> Response:
        """GET /api/v4/events: the lead_status_changed feed (limit ≤ 100)."""
        # https://www.amocrm.ru/developers/content/crm_platform/events-and-notes
        match = event_filter(self._filter())
        with self.store.lock:
            found = [dict(e) for e in self.store.events if match(e)]
        return self._collection("events", found, MAX_EVENTS_LIMIT)
