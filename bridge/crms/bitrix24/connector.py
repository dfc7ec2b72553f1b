"""Bitrix24 through fast-bitrix24: where every Bitrix24 field is read and written.

fast-bitrix24 builds requests, batches and pages; under it sits our own thin transport
(:class:`_Transport`) so that (a) every request first takes a slot from the rate limiter
shared by all workers in Redis, (b) an HTTP error keeps its JSON body and becomes a typed
error, and is never retried inside the library (its retries of 5xx can duplicate a write;
rq retries the job instead, and idempotency keys guard the writes), and (c) no exception
text carries the webhook URL, whose path is the secret.

Wire formats: the Bitrix24 REST docs (D: = https://apidocs.bitrix24.com/<path>.html), as
summed up with citations in shared/reference/bitrix24.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from fast_bitrix24 import BitrixAsync

from bridge import formdata
from bridge.actions import ActionParams, AddComment, CreateTask, MoveStage, Reassign, UpdateFields
from bridge.crms.base import CRM
from bridge.crms.bitrix24 import Bitrix24
from bridge.crms.connector import Connector, Outcome, crm_value, to_crm_fields, to_record
from bridge.errors import AuthError, PermanentError, TransientError
from bridge.masking import redact
from bridge.models import Action, Event, LookupQuery, Record, RecordRef

# fast-bitrix24 logs whole requests and responses (names, phones) at INFO and DEBUG, and sets
# its logger to DEBUG when imported: quiet it here, where it is imported
logging.getLogger("fast_bitrix24").setLevel(logging.WARNING)

# D:api-reference/crm/data-types.md#object_type: entityTypeId and the UF_CRM_TASK prefix
ENTITY = {"lead": (1, "L"), "deal": (2, "D")}
OWNER_KINDS = {"1": "lead", "2": "deal"}
ACTIVITY_TYPES = {"1": "meeting", "2": "call", "3": "task", "4": "email"}
DIRECTIONS = {"1": "incoming", "2": "outgoing"}
TRANSIENT_CODES = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT"}
PRIORITY = {"low": "0", "normal": "1", "high": "2"}  # D:api-reference/tasks/fields.md
MARKER = "bridge:"  # prefix of XML_ID ("External identifier", D:api-reference/tasks/fields.md)


class Bitrix24Error(Exception):
    """Carries a Bitrix24 error body out of fast-bitrix24 without its URL."""


class Bitrix24Connector(Connector):
    """Bitrix24 REST through an incoming webhook."""

    crm: ClassVar[type[CRM]] = Bitrix24

    def __init__(self, tenant: Any, **parts: Any) -> None:
        super().__init__(tenant, **parts)
        self.webhook = tenant.secret("webhook_url")
        self._activities: dict[str, dict[str, Any]] = {}

    # -- reading ------------------------------------------------------------------------

    def fetch(self, ref: RecordRef) -> Record:
        """``crm.deal.get`` / ``crm.lead.get`` (D:api-reference/crm/deals/crm-deal-get.md)."""
        raw = self.call(f"crm.{ref.kind}.get", {"id": ref.id})
        return to_record(ref.kind, raw, self.mapping, self.name, ref.id)

    def subject_owner(self, event: Event) -> RecordRef:
        """The deal or lead an activity belongs to (D:.../activity-base/crm-activity-get.md)."""
        if event.type != "activity.created":
            return event.ref
        activity = self._activity(str(event.subject))
        kind = OWNER_KINDS.get(str(activity.get("OWNER_TYPE_ID")))
        if kind is None:
            raise PermanentError(f"activity {event.subject} belongs to no deal or lead")
        return RecordRef(kind, str(activity["OWNER_ID"]))

    def activity_of(self, event: Event) -> dict[str, Any] | None:
        """What kind of activity an ``activity.created`` event is about.

        TYPE_ID and DIRECTION are the enumerations of D:api-reference/crm/data-types.md
        (#activity-enums): 1 meeting, 2 call, 3 task, 4 e-mail; 1 incoming, 2 outgoing.
        """
        if event.type != "activity.created":
            return None
        raw = self._activity(str(event.subject))
        return {
            "type": ACTIVITY_TYPES.get(str(raw.get("TYPE_ID")), "other"),
            "direction": DIRECTIONS.get(str(raw.get("DIRECTION")), ""),
            "completed": raw.get("COMPLETED") == "Y",
        }

    def _activity(self, activity_id: str) -> dict[str, Any]:
        # asked twice per event (owner, then type): an activity's owner and type never change
        if activity_id not in self._activities:
            if len(self._activities) > 256:
                self._activities.clear()
            self._activities[activity_id] = self.call("crm.activity.get", {"id": activity_id})
        return self._activities[activity_id]

    def find_done(self, record: Record, action: Action) -> Any | None:
        """Look for the task a crashed attempt may have created (by its XML_ID marker).

        ``tasks.task.list`` filters by ``UF_CRM_TASK`` (D:api-reference/tasks/tasks-task-list.md);
        XML_ID is not filterable, so the bound tasks are matched here.
        """
        if action.kind != "create_task":
            return None  # the other actions set values or add text: repeating them is harmless
        binding = f"{ENTITY[record.kind][1]}_{record.id}"
        found = self.call(
            "tasks.task.list",
            {"filter": {"UF_CRM_TASK": binding}, "select": ["ID", "XML_ID", "TITLE"]},
        )
        for task in found.get("tasks", []):
            if task.get("xmlId") == MARKER + action.key:
                return {"task_id": str(task["id"])}
        return None

    def find(self, query: LookupQuery) -> list[Record]:
        """``crm.<kind>.list`` filtered by fields (D:api-reference/crm/deals/crm-deal-list.md)."""
        kind = query.kind
        filt: dict[str, Any] = {
            self.mapping.field_code(kind, k): crm_value(kind, k, v, self.mapping)
            for k, v in query.where
        }
        if query.open_only:
            filt[self.mapping.field_code(kind, "outcome")] = "P"
        if query.in_stage:
            filt.update(self._stage_filter(kind, query.in_stage))
        if query.exclude is not None and query.exclude.kind == kind:
            filt["!ID"] = query.exclude.id
        # every page, not only the first 50: a rule may count hundreds of open records
        found = self.get_all(f"crm.{kind}.list", {"filter": filt, "select": ["*", "UF_*"]})
        return [to_record(kind, raw, self.mapping, self.name, raw["ID"]) for raw in found]

    def _stage_filter(self, kind: str, stages: tuple[str, ...]) -> dict[str, Any]:
        """``@STAGE_ID`` for canonical stages; won / lost / open as stage semantics."""
        outcomes = {v: k for k, v in self.mapping.kind(kind).outcomes.items()}
        semantic = [outcomes[s] for s in stages if s in outcomes]
        ids = [
            i
            for s in stages
            if s not in outcomes
            for i in self.mapping.kind(kind).stages.get(s, [s])
        ]
        if semantic and not ids:
            return {f"@{self.mapping.field_code(kind, 'outcome')}": semantic}
        return {f"@{self.mapping.field_code(kind, 'stage')}": ids}

    def list_open(self, kind: str) -> Iterator[Record]:
        """Every open record, through fast-bitrix24's ``get_all``: the first page, then the
        rest as ``batch`` calls of 50 list pages each (D:settings/how-to-call-rest-api/batch.md),
        so 10,000 deals cost 5 requests instead of 200.
        """
        semantic = self.mapping.field_code(kind, "outcome")
        params = {"filter": {semantic: "P"}, "select": ["*", "UF_*"]}
        for raw in self.get_all(f"crm.{kind}.list", params):
            yield to_record(kind, raw, self.mapping, self.name, raw["ID"])

    def contact_email(self, record: Record) -> str | None:
        """The first e-mail of a lead, or of a deal's contact (D:.../contacts/crm-contact-get.md).

        ``EMAIL`` is a multifield: a list of ``{"VALUE": ..., "VALUE_TYPE": ...}``.
        """
        emails = record.fields.get("email")
        if record.kind == "deal":
            emails = self._contact(record).get("EMAIL")
        for item in emails or []:
            if isinstance(item, dict) and item.get("VALUE"):
                return str(item["VALUE"])
        return None

    def contact_name(self, record: Record) -> str | None:
        """A lead's ``NAME`` and ``LAST_NAME``, or those of a deal's contact."""
        found = record.fields if record.kind != "deal" else self._contact(record)
        keys = ("name", "last_name") if record.kind != "deal" else ("NAME", "LAST_NAME")
        name = " ".join(str(found.get(k) or "") for k in keys).strip()
        return name or None

    def _contact(self, record: Record) -> dict[str, Any]:
        """A deal's contact (D:api-reference/crm/contacts/crm-contact-get.md)."""
        contact = record.fields.get("contact_id")
        if not contact or str(contact) == "0":
            return {}
        return self.call("crm.contact.get", {"id": contact}) or {}

    def user_email(self, user_id: str) -> str | None:
        """A user's ``EMAIL``; ``user.get`` answers a list even for one id.

        D:api-reference/user/user-get.md
        """
        email = self._user(user_id).get("EMAIL")
        return str(email) if email else None

    def user_name(self, user_id: str) -> str | None:
        """A user's ``NAME`` and ``LAST_NAME`` (D:api-reference/user/user-get.md)."""
        user = self._user(user_id)
        name = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
        return name or None

    def _user(self, user_id: str) -> dict[str, Any]:
        users = self.call("user.get", {"filter": {"ID": user_id}}) or []
        return users[0] if users and isinstance(users[0], dict) else {}

    # -- writing ------------------------------------------------------------------------

    def execute(self, record: Record, actions: Sequence[Action]) -> dict[str, Outcome]:
        """All actions of one plan in one ``batch`` (D:settings/how-to-call-rest-api/batch.md).

        ``halt=0``: a batch is not a transaction, so each command's result or error is read
        on its own; the HTTP status of a batch is always 200.
        """
        if not actions:
            return {}
        cmd = {a.key: self._command(record, a) for a in actions}
        body = self.call("batch", {"halt": 0, "cmd": cmd})
        results = body.get("result") or {}
        errors = body.get("result_error") or {}
        return {a.key: _outcome(a, results.get(a.key), errors.get(a.key)) for a in actions}

    def _command(self, record: Record, action: Action) -> str:
        method, params = self.request_for(record, action)
        return f"{method}?{formdata.build_query(params)}"

    def request_for(self, record: Record, action: Action) -> tuple[str, dict[str, Any]]:
        """The REST method and params that carry out one action."""
        p = action.params
        if isinstance(p, CreateTask):
            return "tasks.task.add", {"fields": self._task_fields(record, action.key, p)}
        if isinstance(p, AddComment):
            # lowercase `fields` only, since crm 23.100.0
            # (D:api-reference/crm/timeline/comments/crm-timeline-comment-add.md)
            entity = {"ENTITY_ID": record.id, "ENTITY_TYPE": record.kind, "COMMENT": p.text}
            return "crm.timeline.comment.add", {"fields": entity}
        return f"crm.{record.kind}.update", {"id": record.id, "fields": self._changes(record, p)}

    def _changes(self, record: Record, p: ActionParams) -> dict[str, Any]:
        """The fields of ``crm.<kind>.update`` for a field, stage or owner change."""
        if isinstance(p, UpdateFields):
            return to_crm_fields(record.kind, p.fields, self.mapping)
        if isinstance(p, Reassign):
            return {self.mapping.field_code(record.kind, "responsible"): p.responsible}
        if isinstance(p, MoveStage):
            code = self.mapping.field_code(record.kind, "stage")
            return {code: self.mapping.stage_id(record.kind, p.stage, _category_prefix(record))}
        raise PermanentError(f"Bitrix24 cannot {p.kind}")

    def _task_fields(self, record: Record, key: str, p: CreateTask) -> dict[str, Any]:
        # D:api-reference/tasks/tasks-task-add.md; UF_CRM_TASK binds the task to the deal card
        fields = {
            "TITLE": p.title,
            "DESCRIPTION": p.description,
            "RESPONSIBLE_ID": p.responsible,
            "UF_CRM_TASK": [f"{ENTITY[record.kind][1]}_{record.id}"],
            "XML_ID": MARKER + key,
            "PRIORITY": PRIORITY[p.priority],
        }
        if p.deadline:
            fields["DEADLINE"] = _datetime(p.deadline)
        return fields

    # -- transport ----------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One REST call; returns its ``result``.

        Raises:
            TransientError: rate limit, operating limit, 5xx, timeout, connection failure.
            AuthError: the webhook was refused (401).
            PermanentError: any other error (not found, access denied, bad params).
        """
        return asyncio.run(self._call(method, params))

    def get_all(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a list method (errors as :meth:`call`)."""
        return asyncio.run(self._call(method, params, every=True))

    async def _call(self, method: str, params: dict[str, Any], every: bool = False) -> Any:
        transport = _Transport(self.limiter, self.options.timeout)
        try:
            client = BitrixAsync(self.webhook, verbose=False, client=transport.session)
            # the constructor type-checks for a real ClientSession; requests go through ours
            client.srh.session = transport
            if every:
                with warnings.catch_warnings():
                    # fast-bitrix24 1.8.14 upper-cases the params it checks, then looks for a
                    # lower-case "filter": it warns on every filtered select of "*"
                    warnings.filterwarnings("ignore", "You are selecting all fields")
                    return await client.get_all(method, params)
            envelope = await client.call(method, params, raw=True)
        except Bitrix24Error as exc:
            raise _classify(exc.args[0], exc.args[1], method) from None
        except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
            raise TransientError(f"{method}: {type(exc).__name__}: {redact(exc)}") from None
        finally:
            await transport.close()
        if isinstance(envelope, dict) and "error" in envelope:
            raise _classify(200, envelope, method)
        return envelope.get("result") if isinstance(envelope, dict) else envelope


class _Transport:
    """Stands in for the ``aiohttp.ClientSession`` fast-bitrix24 accepts as ``client``.

    fast-bitrix24 only calls ``post(url=, json=, ssl=)`` as an async context manager and reads
    ``closed``. Errors leave here as :class:`Bitrix24Error`, which the library does not retry.
    """

    def __init__(self, limiter: Any, timeout: float) -> None:
        self.limiter = limiter
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    @property
    def closed(self) -> bool:
        return self.session.closed

    def post(self, url: str, json: Any = None, ssl: Any = True) -> _Post:
        return _Post(self, url, json, ssl)

    async def close(self) -> None:
        await self.session.close()


class _Post:
    def __init__(self, transport: _Transport, url: str, body: Any, ssl: Any) -> None:
        self.transport, self.url, self.body, self.ssl = transport, url, body, ssl
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        if self.transport.limiter is not None:
            await self.transport.limiter.acquire_async()
        self.response = await self.transport.session.post(self.url, json=self.body, ssl=self.ssl)
        if self.response.status >= 400:
            text = await self.response.text()
            self.response.release()
            raise Bitrix24Error(self.response.status, _json_or_text(text))
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.release()


def _json_or_text(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
        return body if isinstance(body, dict) else {"error_description": text[:200]}
    except ValueError:
        return {"error": "", "error_description": text[:200]}


def _classify(status: int, body: dict[str, Any], method: str) -> Exception:
    """Bitrix24 errors by HTTP status plus code plus description (D:_includes/system-errors.md)."""
    code = str(body.get("error") or "")
    text = f"{method}: HTTP {status} {code or '-'}: {redact(body.get('error_description', ''))}"
    if code in TRANSIENT_CODES or status >= 500 or status == 429:
        return TransientError(text)
    if status == 401 or code in ("NO_AUTH_FOUND", "expired_token", "INVALID_CREDENTIALS"):
        return AuthError(text)
    return PermanentError(text)


def _outcome(action: Action, result: Any, error: dict[str, Any] | None) -> Outcome:
    if error:
        exc = _classify(200, error, action.kind)
        return Outcome("retry" if isinstance(exc, TransientError) else "failed", error=str(exc))
    if action.kind == "create_task":
        task = result.get("task", result) if isinstance(result, dict) else {}
        return Outcome("done", {"task_id": str(task.get("id", ""))})
    return Outcome("done", {"result": result})


def _category_prefix(record: Record) -> str:
    pipeline = str(record.fields.get("pipeline") or "0")
    return "" if pipeline == "0" else f"C{pipeline}:"


def _datetime(value: datetime) -> str:
    # explicit offset: the portal stores dates in server time (D:api-reference/data-types.md)
    return value.isoformat(timespec="seconds")
