"""amoCRM (API v4) through our own thin client: where every amoCRM field is read and written.

amoCRM's «сделки» are its leads: one entity, told apart by pipeline. A tenant's mapping says
which pipelines hold canonical ``lead`` records (requests); every other pipeline holds
``deal`` records. Reading flattens a lead for the mapping (:mod:`amocrm_shapes`); writing
sends one request per kind of write per plan, each a JSON array (tasks, notes) or one lead
PATCH. Errors, the rate limit and timeouts: :mod:`amocrm_http`; tokens: :mod:`amocrm_auth`.

Tasks carry a marker at the end of their text, ``[#bridge:<first 12 of the action key>]``:
``request_id`` is only echoed in the answer (D:crm_platform/tasks-api), so after a crash the
marker is how :meth:`AmoCRM.find_done` recognises a task that was created but not journaled.

D: = https://www.amocrm.ru/developers/content/ (quoted in shared/reference/amocrm.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bridge.actions import AddComment, CreateTask, MoveStage, Reassign, UpdateFields
from bridge.calendar import as_datetime
from bridge.crms.amocrm import AmoCRM, AmoCRMSettings, history, shapes
from bridge.crms.amocrm.auth import (
    LongLivedToken,
    OAuthClient,
    OAuthTokens,
    Pause,
    TokenPair,
    TokenStore,
)
from bridge.crms.amocrm.http import Api, TokenSource, Transport
from bridge.crms.amocrm.shapes import kind_of
from bridge.crms.base import CRM
from bridge.crms.connector import Connector, Outcome, Step, to_crm_fields, to_record
from bridge.errors import ConfigError, PermanentError, TransientError
from bridge.models import OPEN, Action, Event, LookupQuery, Record, RecordRef

LEAD_WITH = "loss_reason,contacts"  # D:crm_platform/leads-api, GET parameter `with`
LEAD_NOTES = "/api/v4/leads/notes"  # D:crm_platform/events-and-notes
PAGE = 250  # the largest page (reference §2.0)
TASK_TYPE_CALL = 1  # «Связаться», standard in every account (D:crm_platform/tasks-api)
CACHE_TTL = 600.0  # pipelines, loss reasons and field definitions change rarely
ID_CHUNK = 50  # ids per filter[id][] listing: a URL of 50 ids stays short
WRITE_CHUNK = 50  # items per array request (amoCRM takes up to 250; a refusal fails them all)
CLOCK_SKEW = timedelta(minutes=1)  # the account's clock against the journal's
NO_DEADLINE = timedelta(days=1)  # amoCRM requires complete_till; a rule without a deadline
# D:crm_platform/tasks-api: the standard task types 1 «Связаться» (a call), 2 «Встреча»
TASK_TYPES = {1: "call", 2: "meeting"}
# D:crm_platform/events-and-notes: call notes and their params.call_status (1 left a message,
# 2 call back later, 3 not available, 4 the conversation took place, 5 wrong number,
# 6 no answer, 7 busy)
CALL_NOTES = {"call_in": "incoming", "call_out": "outgoing"}
CALL_STATUS = {1: "other", 2: "call_back", 3: "no_answer", 4: "answered"}
CALL_STATUS |= {5: "wrong_number", 6: "no_answer", 7: "busy"}


def marker(action: Action) -> str:
    """The tail of a task's text that names the action which created it."""
    return f"[#bridge:{action.key[:12]}]"


class AmoCRMConnector(Connector):
    """An amoCRM account through API v4."""

    crm: ClassVar[type[CRM]] = AmoCRM

    def __init__(self, tenant: Any, **parts: Any) -> None:
        super().__init__(tenant, **parts)
        if self.shared is None:
            raise ConfigError(
                [
                    f"tenant {tenant.name}: amoCRM's tokens live in the Redis the bridge's "
                    "workers share: set REDIS_URL to it"
                ]
            )
        opts: AmoCRMSettings = self.options
        self.transport = Transport(
            opts.base_url, self.limiter, opts.timeout, waits_on_429=not self.interactive
        )
        self.tokens = self._tokens(opts)
        self.api = Api(self.transport, self.tokens)
        self.zone = ZoneInfo(tenant.config.timezone)
        self._cache: dict[str, tuple[float | None, Any]] = {}

    def _tokens(self, opts: AmoCRMSettings) -> TokenSource:
        pause = Pause(self.shared, opts.account_id, self.tenant.name)
        if opts.auth == "long_lived":
            return LongLivedToken(lambda: self.tenant.secret("long_lived_token"), pause)
        client = OAuthClient(
            self.transport,
            str(opts.client_id),
            self.tenant.secret("client_secret"),
            str(opts.redirect_uri),
        )
        store = TokenStore(self.shared, opts.account_id)
        return OAuthTokens(store, client, pause, self._bootstrap)

    def _bootstrap(self) -> str | None:
        if not self.options.refresh_token_env:  # type: ignore[attr-defined]
            return None
        try:
            return self.tenant.secret("refresh_token")
        except ConfigError:
            return None

    def authorize(self, code: str) -> TokenPair:
        """Exchange an authorization code and store the pair (``bridge amocrm-auth``).

        Raises:
            ConfigError: a long-lived-token tenant has no codes to exchange.
            bridge.errors.AuthError: amoCRM refused the code.
        """
        if not isinstance(self.tokens, OAuthTokens):
            raise ConfigError([f"tenant {self.tenant.name} uses a long-lived token, not OAuth"])
        return self.tokens.authorize(code)

    # -- reading ------------------------------------------------------------------------

    def fetch(self, ref: RecordRef) -> Record:
        """``GET /api/v4/leads/{id}?with=loss_reason,contacts`` (D:crm_platform/leads-api).

        Raises:
            PermanentError: 204, «Сделка с указанным ID не существует».
        """
        return self.to_record(self._lead(ref.id))

    def fetch_many(self, refs: Sequence[RecordRef]) -> dict[RecordRef, Record | PermanentError]:
        """Leads by ``filter[id][]``, 250 to a page (D:crm_platform/leads-api): one request for
        a batch of events instead of one per lead; a lead the account no longer has maps to
        its error."""
        unique = list(dict.fromkeys(refs))
        ids = list(dict.fromkeys(r.id for r in unique))  # a kind-blank ref may name one twice
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), PAGE):
            chunk = ids[start : start + PAGE]
            found.update({str(raw["id"]): raw for raw in self._leads({"filter[id][]": chunk})})
        return {
            ref: self.to_record(found[ref.id])
            if ref.id in found
            else PermanentError(f"amoCRM lead {ref.id} not found (204)")
            for ref in unique
        }

    def _lead(self, lead_id: str) -> dict[str, Any]:
        raw = self.api.call("GET", f"/api/v4/leads/{int(lead_id)}", params={"with": LEAD_WITH})
        if not raw:
            raise PermanentError(f"amoCRM lead {lead_id} not found (204)")
        return raw

    def to_record(self, raw: dict[str, Any]) -> Record:
        """A v4 lead as a canonical record of its pipeline's kind."""
        flat = shapes.flatten_lead(raw, self.zone)
        if raw.get("loss_reason_id") and not flat[shapes.LOSS_REASON]:
            flat[shapes.LOSS_REASON] = self._loss_reasons().get(int(raw["loss_reason_id"]))
        kind = kind_of(self.mapping, raw.get("pipeline_id"))
        return to_record(kind, flat, self.mapping, self.name, str(raw["id"]))

    def subject_owner(self, event: Event) -> RecordRef:
        """The lead an event is about. Task and note hooks name the lead but not its kind
        (its pipeline): the ref goes on with the kind blank, and :meth:`fetch_many`, which
        reads leads by id with the batch, gives the record its kind. No request."""
        return event.ref

    def subject_owners(self, events: Sequence[Event]) -> list[RecordRef | PermanentError]:
        """The events' leads (:meth:`subject_owner`, no request); on the way, the notes and
        tasks the batch's activity events name, read for :meth:`activity_of` in one listing
        each: ``GET /api/v4/leads/notes?filter[id][]=…`` (D:crm_platform/events-and-notes,
        «Список примечаний по типу сущности»: ``filter[id]`` takes one id or an array) and
        ``GET /api/v4/tasks?filter[id][]=…`` (D:crm_platform/tasks-api, «Список задач»)."""
        named = {
            (_list_of(e), str(e.subject))
            for e in events
            if e.type.startswith("activity.") and str(e.subject or "").isdigit()
        }
        memo = self.memo()
        if memo is None:
            return super().subject_owners(events)
        memo["asked"], found = named, memo.setdefault("activities", {})
        for kind, path in (("tasks", "/api/v4/tasks"), ("notes", LEAD_NOTES)):
            ids = sorted(int(i) for k, i in named if k == kind)
            for start in range(0, len(ids), ID_CHUNK):
                params = {"filter[id][]": ids[start : start + ID_CHUNK], "limit": PAGE}
                listed = self.api.pages(path, params, kind)
                found.update({(kind, str(item["id"])): item for item in listed})
        return super().subject_owners(events)

    def activity_of(self, event: Event) -> dict[str, Any] | None:
        """What a task or note event's activity is: a task (its type, ``is_completed``, the
        result's text), a call note (direction, ``call_status`` as the outcome). Read with
        the batch (:meth:`subject_owners`), else alone: ``GET /api/v4/tasks/{id}``,
        ``GET /api/v4/leads/notes/{id}``."""
        if not event.type.startswith("activity.") or not event.subject:
            return None
        if _list_of(event) == "tasks":
            task = self._activity("tasks", "/api/v4/tasks", str(event.subject))
            return {
                "type": TASK_TYPES.get(task.get("task_type_id"), "task"),
                "direction": "",
                "completed": bool(task.get("is_completed")),
                "result": str((task.get("result") or {}).get("text") or ""),
            }
        note = self._activity("notes", LEAD_NOTES, str(event.subject))
        direction = CALL_NOTES.get(str(note.get("note_type")))
        if direction is None:
            return {"type": "other", "direction": "", "completed": False}
        status = (note.get("params") or {}).get("call_status")
        outcome = CALL_STATUS.get(int(status), "other") if str(status or "").isdigit() else None
        return {"type": "call", "direction": direction, "completed": True, "outcome": outcome}

    def _activity(self, kind: str, path: str, item_id: str) -> dict[str, Any]:
        """A task or note as the batch listed it (none: it is gone), else read by id."""
        memo = self.memo() or {}
        if (kind, item_id) in memo.get("asked", ()):
            return memo.get("activities", {}).get((kind, item_id)) or {}
        return self.api.call("GET", f"{path}/{int(item_id)}") or {}

    def planned_activity(self, record: Record) -> datetime | None:
        """The lead's ``closest_task_at``: amoCRM keeps the nearest open task's deadline on the
        lead itself (D:crm_platform/leads-api), so no request is needed."""
        return as_datetime(record.value("closest_task_at"), self.tenant.config.timezone)

    def disabled_hooks(self) -> list[str]:
        """A problem per webhook amoCRM has switched off after too many bad answers (a check).

        More than 100 invalid answers in 2 hours disable a hook until an admin re-enables it,
        and only the account's admins get a bell notice
        (https://www.amocrm.ru/developers/content/crm_platform/webhooks-api).
        """
        raw = self.api.call("GET", "/api/v4/webhooks") or {}
        hooks = (raw.get("_embedded") or {}).get("webhooks") or []
        return [
            f"amoCRM disabled the webhook to {h.get('destination')}: events are not arriving;"
            " re-enable it in the account's integration settings"
            for h in hooks
            if h.get("disabled")
        ]

    def find_done(self, record: Record, action: Action, since: datetime) -> Any | None:
        """The task or note a crashed attempt may have made: a task by the marker in its
        text (``GET /api/v4/tasks?filter[entity_type]=leads&filter[entity_id][]=…``,
        D:crm_platform/tasks-api), a note by its text among the lead's common notes since the
        claim (``GET /api/v4/leads/{id}/notes``, D:crm_platform/events-and-notes). Field
        writes are not looked for: :mod:`bridge.execute` skips a write the lead already holds.
        """
        if isinstance(action.params, CreateTask):
            params: dict[str, Any] = {
                "filter[entity_type]": "leads",
                "filter[entity_id][]": record.id,
                "limit": PAGE,
            }
            if record.crm != self.name:  # a paired tenant's task, bound to no lead: its person's
                params = {"filter[responsible_user_id][]": action.params.responsible, "limit": PAGE}
            for task in self.api.pages("/api/v4/tasks", params, "tasks"):
                if str(task.get("text") or "").endswith(marker(action)):
                    return {"task_id": str(task["id"])}
        if isinstance(action.params, AddComment):
            params = {"filter[note_type]": "common", "limit": PAGE}
            params["filter[updated_at][from]"] = int((since - CLOCK_SKEW).timestamp())
            path = f"/api/v4/leads/{int(record.id)}/notes"
            for note in self.api.pages(path, params, "notes"):
                if (note.get("params") or {}).get("text") == action.params.text:
                    return {"note_id": str(note["id"])}
        return None

    task_lookup_chunk = 50  # a URL of 50 lead ids stays short

    def find_tasks(self, chunk: Sequence[tuple[Record, Action]]) -> dict[str, Any]:
        """The tasks of up to 50 leads in one listing (``filter[entity_id][]`` takes many,
        D:crm_platform/tasks-api): after a batch of writes timed out, its retry costs a
        request, not one per task."""
        leads = sorted({record.id for record, _ in chunk})
        params = {"filter[entity_type]": "leads", "filter[entity_id][]": leads, "limit": PAGE}
        tasks = self.api.pages("/api/v4/tasks", params, "tasks")
        texts = [(t, str(t.get("text") or "")) for t in tasks]
        return {
            action.key: next(
                ({"task_id": str(t["id"])} for t, text in texts if text.endswith(marker(action))),
                None,
            )
            for _, action in chunk
        }

    def find(self, query: LookupQuery) -> list[Record]:
        """Leads of ``query.kind`` whose canonical fields equal ``query.where``.

        By contact: ``GET /api/v4/contacts/{id}?with=leads`` (D:crm_platform/contacts-api),
        then those leads by ``filter[id]``. Otherwise the kind's leads are listed and
        compared here: amoCRM's custom-field filters are a paid option
        (D:crm_platform/filters-api, «Фильтрация (Alpha)»). An empty contact matches nothing.
        """
        where = dict(query.where)
        contact = where.get("contact_id") if self._maps("contact_id", shapes.CONTACT) else None
        if contact is not None:
            raws = self._contact_leads(contact)
        else:
            pipelines = self._pipelines_of(query.kind)
            raws = self._leads({"filter[pipeline_id][]": pipelines}) if pipelines else iter(())
        found = [self.to_record(raw) for raw in raws]
        return [r for r in found if _matches(r, query)]

    def list_open(self, kind: str) -> Iterator[Record]:
        """Every open lead of a kind: ``filter[statuses]`` with the open stages of its
        pipelines (D:crm_platform/filters-api), checked again here, paged."""
        params: dict[str, Any] = {}
        index = 0
        for pipeline in self._pipelines():
            if str(pipeline["id"]) not in self._pipelines_of(kind):
                continue
            for status in (pipeline.get("_embedded") or {}).get("statuses") or []:
                if status["id"] not in (142, 143):
                    params[f"filter[statuses][{index}][pipeline_id]"] = pipeline["id"]
                    params[f"filter[statuses][{index}][status_id]"] = status["id"]
                    index += 1
        if not index:
            return
        for raw in self._leads(params):
            record = self.to_record(raw)
            if record.kind == kind and record.outcome == OPEN:
                yield record

    def changed_since(self, kind: str, since: datetime) -> Iterator[Record]:
        """Leads changed after ``since``: ``filter[updated_at][from]`` (D:crm_platform/filters-api),
        in the kind's pipelines, paged."""
        pipelines = self._pipelines_of(kind)
        if not pipelines:
            return
        params = {"filter[updated_at][from]": int(since.timestamp())}
        for raw in self._leads({**params, "filter[pipeline_id][]": pipelines}):
            record = self.to_record(raw)
            if record.kind == kind:
                yield record

    def contact_email(self, record: Record) -> str | None:
        """The EMAIL of the lead's main contact (``GET /api/v4/contacts/{id}``, a multitext
        field with ``field_code`` EMAIL: D:crm_platform/contacts-api)."""
        raw = self._contact(record)
        for field in raw.get("custom_fields_values") or []:
            if field.get("field_code") == "EMAIL":
                for value in field.get("values") or []:
                    if value.get("value"):
                        return str(value["value"])
        return None

    def contact_name(self, record: Record) -> str | None:
        """The ``name`` of the lead's main contact (D:crm_platform/contacts-api)."""
        return str(self._contact(record).get("name") or "") or None

    def _contact(self, record: Record) -> dict[str, Any]:
        contact = record.fields.get("contact_id")
        if not contact or not str(contact).isdigit():
            return {}
        return self.api.call("GET", f"/api/v4/contacts/{int(contact)}") or {}

    def user_email(self, user_id: str) -> str | None:
        """A user's ``email``: ``GET /api/v4/users/{id}`` (D:crm_platform/users-api: admins)."""
        raw = self._user(user_id)
        return str(raw["email"]) if raw.get("email") else None

    def user_name(self, user_id: str) -> str | None:
        """A user's ``name`` (``GET /api/v4/users/{id}``, D:crm_platform/users-api)."""
        return str(self._user(user_id).get("name") or "") or None

    def _user(self, user_id: str) -> dict[str, Any]:
        if not str(user_id).isdigit():
            return {}
        return self.api.call("GET", f"/api/v4/users/{int(user_id)}") or {}

    def history(self, kind: str, since: datetime) -> Iterator[Step]:
        """Stage moves from the events feed (:func:`bridge.crms.amocrm.history.steps`)."""
        return history.steps(self, kind, since)

    def leads(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Leads of ``GET /api/v4/leads`` with filters, every page."""
        return self._leads(params)

    def _leads(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self.api.pages(
            "/api/v4/leads", {**params, "with": LEAD_WITH, "limit": PAGE}, "leads"
        )

    def _contact_leads(self, contact: str) -> list[dict[str, Any]]:
        if not str(contact).isdigit():
            return []
        raw = self.api.call("GET", f"/api/v4/contacts/{contact}", params={"with": "leads"})
        ids = [lead["id"] for lead in ((raw or {}).get("_embedded") or {}).get("leads") or []]
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), PAGE):
            out += self._leads({"filter[id][]": ids[start : start + PAGE]})
        return out

    def _maps(self, name: str, code: str) -> bool:
        return all(self.mapping.kind(k).fields.get(name) == code for k in ("lead", "deal"))

    # -- account data, cached -----------------------------------------------------------

    def _cached(self, name: str, load: Callable[[], Any]) -> Any:
        # a missing entry is stale whatever the clock says: monotonic time counts from boot,
        # so "0.0 = long ago" is wrong on a machine up for less than CACHE_TTL
        at, value = self._cache.get(name, (None, None))
        if at is None or time.monotonic() - at > CACHE_TTL:
            value = load()
            self._cache[name] = (time.monotonic(), value)
        return value

    def _pipelines(self) -> list[dict[str, Any]]:
        """``GET /api/v4/leads/pipelines`` (D:crm_platform/leads_pipelines)."""
        return self._cached(
            "pipelines",
            lambda: list(self.api.pages("/api/v4/leads/pipelines", {}, "pipelines")),
        )

    def _pipelines_of(self, kind: str) -> list[str]:
        ids = [str(p["id"]) for p in self._pipelines()]
        return [i for i in ids if kind_of(self.mapping, i) == kind]

    def _loss_reasons(self) -> dict[int, str]:
        """``GET /api/v4/leads/loss_reasons`` (reference §2.4)."""
        path = "/api/v4/leads/loss_reasons"
        return self._cached(
            "loss_reasons",
            lambda: {r["id"]: r["name"] for r in self.api.pages(path, {}, "loss_reasons")},
        )

    def _field_types(self) -> dict[int, str]:
        """``GET /api/v4/leads/custom_fields`` (D:crm_platform/custom-fields): id → type."""
        path = "/api/v4/leads/custom_fields"
        return self._cached(
            "fields",
            lambda: {f["id"]: f["type"] for f in self.api.pages(path, {}, "custom_fields")},
        )

    # -- writing ------------------------------------------------------------------------

    def execute(self, record: Record, actions: Sequence[Action]) -> dict[str, Outcome]:
        """The actions of one record (:meth:`execute_many`)."""
        return self.execute_many([(record, actions)])

    def execute_many(self, plans: Sequence[tuple[Record, Sequence[Action]]]) -> dict[str, Outcome]:
        """One request per kind of write for every record at once: all tasks in one
        ``POST /api/v4/tasks`` array, all comments in one ``POST /api/v4/leads/notes``, all
        field/stage/owner changes in one ``PATCH /api/v4/leads`` array. A request that fails
        fails (or makes wait) only its own actions."""
        groups: dict[str, list[tuple[Record, Action]]] = {"tasks": [], "notes": [], "leads": []}
        out: dict[str, Outcome] = {}
        for record, actions in plans:
            for action in actions:
                group = _GROUPS.get(type(action.params))
                if group is None:
                    out[action.key] = Outcome("failed", error=f"amoCRM cannot {action.kind}")
                else:
                    groups[group].append((record, action))
        senders = {"tasks": self._send_tasks, "notes": self._send_notes, "leads": self._send_leads}
        for name, items in groups.items():
            for start in range(0, len(items), WRITE_CHUNK):
                chunk = items[start : start + WRITE_CHUNK]
                out.update(_guarded(chunk, lambda c=chunk, n=name: senders[n](c)))
        return out

    def _send_tasks(self, items: list[tuple[Record, Action]]) -> dict[str, Outcome]:
        body = [self._task(record, a) for record, a in items]
        answer = self.api.call("POST", "/api/v4/tasks", body=body) or {}
        made = _by_request(answer, "tasks")
        return {
            a.key: Outcome("done", {"task_id": str(made.get(a.key[:12], {}).get("id", ""))})
            for _, a in items
        }

    def _task(self, record: Record, action: Action) -> dict[str, Any]:
        """A task item (D:crm_platform/tasks-api): the responsible is always explicit, since
        amoCRM's default is the token's owner, not the lead's manager."""
        p = action.params
        assert isinstance(p, CreateTask)
        if not p.responsible:
            raise PermanentError(f"{action.rule}: the task has no responsible user")
        due = (
            shapes.unix(p.deadline)
            if p.deadline
            else int(time.time() + NO_DEADLINE.total_seconds())
        )
        text = "\n".join(part for part in (p.title, p.description, marker(action)) if part)
        task = {
            "task_type_id": TASK_TYPE_CALL,
            "text": text,
            "complete_till": due,
            "responsible_user_id": int(p.responsible),
            "request_id": action.key[:12],
        }
        if record.crm == self.name:  # a paired tenant's record is no lead of this account
            task |= {"entity_id": int(record.id), "entity_type": "leads"}
        return task

    def _send_notes(self, items: list[tuple[Record, Action]]) -> dict[str, Outcome]:
        """Common notes (D:crm_platform/events-and-notes): ``note_type`` + ``params.text``."""
        body = [
            {
                "entity_id": int(record.id),
                "note_type": "common",
                "params": {"text": a.params.text},  # type: ignore[union-attr]
                "request_id": a.key[:12],
            }
            for record, a in items
        ]
        answer = self.api.call("POST", "/api/v4/leads/notes", body=body) or {}
        made = _by_request(answer, "notes")
        return {
            a.key: Outcome("done", {"note_id": str(made.get(a.key[:12], {}).get("id", ""))})
            for _, a in items
        }

    def _send_leads(self, items: list[tuple[Record, Action]]) -> dict[str, Outcome]:
        """One ``PATCH /api/v4/leads`` array, one item per lead with all of its changes
        (D:crm_platform/leads-api «Редактирование сделок»)."""
        patches: dict[str, dict[str, Any]] = {}
        sent: list[tuple[str, Action]] = []
        out: dict[str, Outcome] = {}
        for record, action in items:
            try:
                _merge(patches.setdefault(record.id, {}), self._lead_change(record, action))
                sent.append((record.id, action))
            except PermanentError as exc:
                out[action.key] = Outcome("failed", error=str(exc))
        body = [{"id": int(lead_id), **patch} for lead_id, patch in patches.items() if patch]
        if body:
            answer = self.api.call("PATCH", "/api/v4/leads", body=body) or {}
            stamps = {
                str(lead.get("id")): lead.get("updated_at")
                for lead in (answer.get("_embedded") or {}).get("leads", [])
            }
            out.update({a.key: Outcome("done", {"updated_at": stamps.get(i)}) for i, a in sent})
        return out

    def _lead_change(self, record: Record, action: Action) -> dict[str, Any]:
        p = action.params
        if isinstance(p, Reassign):
            return {"responsible_user_id": shapes.top_level("responsible_user_id", p.responsible)}
        if isinstance(p, MoveStage):
            return self._stage_change(record, p.stage)
        assert isinstance(p, UpdateFields)
        return self._field_changes(record.kind, p.fields)

    def _stage_change(self, record: Record, stage: str) -> dict[str, Any]:
        """``status_id`` (and ``pipeline_id`` when the stage lies in another pipeline);
        ``won``/``lost`` are 142/143 of the lead's own pipeline (D:crm_platform/leads_pipelines)."""
        km = self.mapping.kind(record.kind)
        outcome_ids = {v: k for k, v in km.outcomes.items() if v != OPEN}
        status = outcome_ids.get(stage) or self.mapping.stage_id(record.kind, stage)
        change = {"status_id": shapes.top_level("status_id", status)}
        for pipeline in self._pipelines():
            statuses = (pipeline.get("_embedded") or {}).get("statuses") or []
            if status not in outcome_ids.values() and any(
                str(s["id"]) == str(status) for s in statuses
            ):
                change["pipeline_id"] = pipeline["id"]
        return change

    def _field_changes(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        change: dict[str, Any] = {}
        for code, value in to_crm_fields(kind, fields, self.mapping).items():
            if code.startswith(shapes.CUSTOM) and code[len(shapes.CUSTOM) :].isdigit():
                field_id = int(code[len(shapes.CUSTOM) :])
                item = shapes.custom_write(field_id, self._field_types().get(field_id), value)
                change.setdefault("custom_fields_values", []).append(item)
            elif code == shapes.LOSS_REASON:
                change["loss_reason_id"] = self._loss_reason_id(value)
            else:
                change[code] = shapes.top_level(code, value)
        return change

    def _loss_reason_id(self, name: Any) -> int | None:
        if name in (None, ""):
            return None
        for reason_id, reason in self._loss_reasons().items():
            if reason == str(name):
                return reason_id
        raise PermanentError(f"amoCRM has no loss reason named {name!r}")


def _list_of(event: Event) -> str:
    """Where an activity event's item is listed: ``tasks`` for a task hook's (``task[...]``),
    ``notes`` for a note hook's (``leads[note]``)."""
    return "tasks" if event.source.startswith("task[") else "notes"


def _merge(patch: dict[str, Any], change: dict[str, Any]) -> None:
    for key, value in change.items():
        if key == "custom_fields_values":
            patch.setdefault(key, []).extend(value)
        else:
            patch[key] = value


def _guarded(
    items: list[tuple[Record, Action]], send: Callable[[], dict[str, Outcome]]
) -> dict[str, Outcome]:
    """Run one request's sender: a transient error makes its actions wait, a permanent one
    fails them; other requests of the plan are not affected."""
    try:
        return send()
    except TransientError as exc:
        return {a.key: Outcome.retry(exc) for _, a in items}
    except PermanentError as exc:
        return {a.key: Outcome("failed", error=str(exc)) for _, a in items}


def _by_request(answer: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The created items of an array request by their ``request_id``."""
    created = (answer.get("_embedded") or {}).get(name, [])
    return {str(item.get("request_id")): item for item in created}


_GROUPS: dict[type, str] = {
    CreateTask: "tasks",
    AddComment: "notes",
    UpdateFields: "leads",
    MoveStage: "leads",
    Reassign: "leads",
}


def _matches(record: Record, query: LookupQuery) -> bool:
    if record.kind != query.kind:
        return False
    if query.open_only and record.outcome != OPEN:
        return False
    if query.exclude is not None and record.ref == query.exclude:
        return False
    if query.in_stage and not any(record.in_stage(s) for s in query.in_stage):
        return False
    return all(str(record.value(k) or "") == str(v) for k, v in query.where)
