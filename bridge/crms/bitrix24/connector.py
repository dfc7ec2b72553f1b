"""Bitrix24: where every Bitrix24 field is read and written.

A batch of events costs the portal two requests: one ``batch`` that reads every record
(``crm.deal.get`` x N) and one that carries out every action of every record, 50 commands a
``batch`` (the most Bitrix24 takes). The calls go through :mod:`transport` (fast-bitrix24
over our own transport: shared rate limit, typed errors, no library retries, kept-alive
sessions).

Wire formats: the Bitrix24 REST docs (D: = https://apidocs.bitrix24.com/<path>.html), as
summed up with citations in shared/reference/bitrix24.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bridge import formdata
from bridge.actions import ActionParams, AddComment, CreateTask, MoveStage, Reassign, UpdateFields
from bridge.calendar import as_datetime
from bridge.crms.base import CRM
from bridge.crms.bitrix24 import Bitrix24, history
from bridge.crms.bitrix24.records import bitrix_record, first_value
from bridge.crms.bitrix24.transport import Rest, classify
from bridge.crms.connector import (
    Connector,
    Outcome,
    Step,
    crm_value,
    to_crm_fields,
)
from bridge.errors import PermanentError, TransientError
from bridge.models import Action, Event, LookupQuery, Record, RecordRef

# fast-bitrix24 logs whole requests and responses (names, phones) at INFO and DEBUG, and sets
# its logger to DEBUG when imported: quiet it here, where it is imported
logging.getLogger("fast_bitrix24").setLevel(logging.WARNING)

# D:api-reference/crm/data-types.md#object_type: entityTypeId and the UF_CRM_TASK prefix
ENTITY = {"lead": (1, "L"), "deal": (2, "D")}
OWNER_KINDS = {"1": "lead", "2": "deal"}
ACTIVITY_TYPES = {"1": "meeting", "2": "call", "3": "task", "4": "email"}
DIRECTIONS = {"1": "incoming", "2": "outgoing"}
PRIORITY = {"low": "0", "normal": "1", "high": "2"}
# the most commands a `batch` takes (D:settings/how-to-call-rest-api/batch.md)
BATCH = 50  # D:api-reference/tasks/fields.md
CLOCK_SKEW = timedelta(minutes=1)  # the portal's clock against the journal's
MARKER = "bridge:"  # prefix of XML_ID ("External identifier", D:api-reference/tasks/fields.md)


class Bitrix24Connector(Connector):
    """Bitrix24 REST through an incoming webhook."""

    crm: ClassVar[type[CRM]] = Bitrix24

    def __init__(self, tenant: Any, **parts: Any) -> None:
        super().__init__(tenant, **parts)
        self.rest = Rest(
            tenant.secret("webhook_url"),
            self.limiter,
            self.options.timeout,
            patient=not self.interactive,
        )

    # -- reading ------------------------------------------------------------------------

    def fetch_many(self, refs: Sequence[RecordRef]) -> dict[RecordRef, Record | PermanentError]:
        """``crm.<kind>.get`` for every record, 50 to a ``batch``
        (D:settings/how-to-call-rest-api/batch.md); a record the portal refuses (deleted, no
        access) maps to its error, a transient error stops the whole read. The records are
        remembered for :meth:`planned_activity`."""
        unique = list(dict.fromkeys(refs))
        if (memo := self.memo()) is not None:
            memo["refs"] = unique
        found = self.read_batch([(f"crm.{r.kind}.get", {"id": r.id}) for r in unique])
        out: dict[RecordRef, Record | PermanentError] = {}
        for ref, raw in zip(unique, found, strict=True):
            if isinstance(raw, TransientError):
                raise raw
            out[ref] = raw if isinstance(raw, PermanentError) else self._record(ref, raw)
        return out

    def _record(self, ref: RecordRef, raw: dict[str, Any]) -> Record:
        return bitrix_record(ref.kind, raw, self.mapping, self.name, ref.id)

    def read_batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Read-only calls, 50 commands to a ``batch`` (D:settings/how-to-call-rest-api/
        batch.md, ``halt=0``, so each command's result or error is its own): each call's
        ``result`` in order, or the error the portal answered it with (:func:`classify`: a
        PermanentError for a deleted record, a TransientError for a limit).

        Raises:
            TransientError: a ``batch`` request got no answer now.
        """
        out: list[Any] = []
        for start in range(0, len(calls), BATCH):
            chunk = calls[start : start + BATCH]
            cmd = {f"r{i}": f"{m}?{formdata.build_query(p)}" for i, (m, p) in enumerate(chunk)}
            body = self.call("batch", {"halt": 0, "cmd": cmd})
            results, errors = body.get("result") or {}, body.get("result_error") or {}
            for key, (method, _) in zip(cmd, chunk, strict=True):
                if key in results and key not in errors:
                    out.append(results[key])
                else:
                    out.append(classify(200, errors.get(key) or {"error": "NOT_FOUND"}, method))
        return out

    def fetch(self, ref: RecordRef) -> Record:
        """``crm.deal.get`` / ``crm.lead.get`` (D:api-reference/crm/deals/crm-deal-get.md)."""
        return self._record(ref, self.call(f"crm.{ref.kind}.get", {"id": ref.id}))

    def subject_owner(self, event: Event) -> RecordRef:
        """The deal or lead an activity belongs to (D:.../activity-base/crm-activity-get.md)."""
        if not event.type.startswith("activity."):
            return event.ref
        return _owner(event, self._activity(event))

    def subject_owners(self, events: Sequence[Event]) -> list[RecordRef | PermanentError]:
        """The owners of a batch's events: every activity read with ``crm.activity.get``, 50
        to a ``batch``, and kept for :meth:`activity_of` until the next batch (read afresh for
        each batch, since an update may be the one that completed it)."""
        memo = self.memo()
        asked = [e for e in events if e.type.startswith("activity.")]
        if memo is not None and asked:
            found = self.read_batch([("crm.activity.get", {"id": str(e.subject)}) for e in asked])
            memo["activities"] = {_activity_key(e): r for e, r in zip(asked, found, strict=True)}
        return super().subject_owners(events)

    def activity_of(self, event: Event) -> dict[str, Any] | None:
        """What kind of activity an ``activity.created`` event is about.

        TYPE_ID and DIRECTION are the enumerations of D:api-reference/crm/data-types.md
        (#activity-enums): 1 meeting, 2 call, 3 task, 4 e-mail; 1 incoming, 2 outgoing.
        """
        if not event.type.startswith("activity."):
            return None
        raw = self._activity(event)
        return {
            "type": ACTIVITY_TYPES.get(str(raw.get("TYPE_ID")), "other"),
            "direction": DIRECTIONS.get(str(raw.get("DIRECTION")), ""),
            "completed": raw.get("COMPLETED") == "Y",
        }

    def _activity(self, event: Event) -> dict[str, Any]:
        """The event's activity as its batch read it (:meth:`subject_owners`), else alone."""
        read = (self.memo() or {}).setdefault("activities", {})
        found = read.get(_activity_key(event))
        if found is None:
            found = read[_activity_key(event)] = self.call(
                "crm.activity.get", {"id": str(event.subject)}
            )
        if isinstance(found, Exception):
            raise found
        return found

    def planned_activity(self, record: Record) -> datetime | None:
        """The nearest open activity's DEADLINE: ``crm.activity.list`` filtered by owner and
        ``COMPLETED: N`` (D:api-reference/crm/timeline/activities/activity-base/
        crm-activity-list.md), the next contact as scheduled in the portal itself.

        The first record of a batch asked about has every record of the batch (those of
        :meth:`fetch_many`) asked about in the same ``batch`` request: a batch request costs
        the portal's limit the same whatever it holds, and the next events will ask too.
        """
        memo = self.memo() or {}
        planned = memo.setdefault("planned", {})
        if record.ref not in planned:
            batch = [r for r in memo.get("refs", []) if r.kind in ENTITY]
            refs = [r for r in dict.fromkeys([record.ref, *batch]) if r not in planned]
            found = self.read_batch([("crm.activity.list", _open_activities(r)) for r in refs])
            planned.update(zip(refs, found, strict=True))
        listed = planned[record.ref]
        if isinstance(listed, Exception):
            raise listed
        times = [as_datetime(a.get("DEADLINE"), "UTC") for a in listed or []]
        return min((t for t in times if t is not None), default=None)

    def find_done(self, record: Record, action: Action, since: datetime) -> Any | None:
        """Look for the task or comment a crashed attempt may have made.

        A task by its XML_ID marker: ``tasks.task.list`` filters by ``UF_CRM_TASK``
        (D:api-reference/tasks/tasks-task-list.md), XML_ID is not filterable, so the bound
        tasks are matched here. A comment by its text and time: ``crm.timeline.comment.list``
        by entity (D:api-reference/crm/timeline/comments/crm-timeline-comment-list.md).
        Field writes are not looked for: :mod:`bridge.execute` skips a write the record
        already holds.
        """
        if isinstance(action.params, CreateTask):
            return self._task_made(record, action)
        if isinstance(action.params, AddComment):
            return self._comment_made(record, action.params.text, since)
        return None

    task_lookup_chunk = BATCH

    def find_tasks(self, chunk: Sequence[tuple[Record, Action]]) -> dict[str, Any]:
        """``tasks.task.list`` of each record, 50 commands to a ``batch``: after a batch of
        writes timed out, its retry costs one request, not one per task."""
        found = self.read_batch([("tasks.task.list", self._bound_tasks(r)) for r, _ in chunk])
        return {
            action.key: listed if isinstance(listed, Exception) else _marked(listed or {}, action)
            for (_, action), listed in zip(chunk, found, strict=True)
        }

    def _bound_tasks(self, record: Record) -> dict[str, Any]:
        # D:api-reference/tasks/tasks-task-list.md: UF_CRM_TASK is filterable, XML_ID is not.
        # Newest first (the default too, "по убыванию идентификатора задачи":
        # dev.1c-bitrix.ru/rest_help/tasks/task/item/list.php), so that the first page of 50
        # holds a crashed attempt's task even on a deal with hundreds of older ones.
        bound = f"{ENTITY[record.kind][1]}_{record.id}"
        return {
            "filter": {"UF_CRM_TASK": bound},
            "order": {"ID": "desc"},
            "select": ["ID", "XML_ID", "TITLE"],
        }

    def _task_made(self, record: Record, action: Action) -> Any | None:
        if record.crm == self.name:
            return _marked(self.call("tasks.task.list", self._bound_tasks(record)), action)
        # a paired tenant's task, bound to nothing here: look among its person's tasks
        assert isinstance(action.params, CreateTask)
        flt = {"RESPONSIBLE_ID": action.params.responsible, "TITLE": action.params.title}
        found = self.call("tasks.task.list", {"filter": flt, "select": ["ID", "XML_ID", "TITLE"]})
        return _marked(found, action)

    def _comment_made(self, record: Record, text: str, since: datetime) -> Any | None:
        params = {
            "filter": {"ENTITY_ID": record.id, "ENTITY_TYPE": record.kind},
            "select": ["ID", "COMMENT", "CREATED"],
        }
        for comment in self.get_all("crm.timeline.comment.list", params):
            made = as_datetime(comment.get("CREATED"), "UTC")
            if comment.get("COMMENT") == text and made and made >= since - CLOCK_SKEW:
                return {"comment_id": str(comment["ID"])}
        return None

    def find(self, query: LookupQuery) -> list[Record]:
        """``crm.<kind>.list`` filtered by fields (D:api-reference/crm/deals/crm-deal-list.md)."""
        kind = query.kind
        outcomes = set(self.mapping.kind(kind).outcomes.values())
        semantic = tuple(s for s in query.in_stage if s in outcomes)
        named = tuple(s for s in query.in_stage if s not in outcomes)
        if semantic and named:
            # one filter cannot say "in these stages, or won": ask twice
            return [
                *self.find(replace(query, in_stage=named)),
                *self.find(replace(query, in_stage=semantic)),
            ]
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
        found = self.get_all(f"crm.{kind}.list", {"filter": filt, "select": _select(kind)})
        return [bitrix_record(kind, raw, self.mapping, self.name, raw["ID"]) for raw in found]

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
        params = {"filter": {semantic: "P"}, "select": _select(kind)}
        for raw in self.get_all(f"crm.{kind}.list", params):
            yield bitrix_record(kind, raw, self.mapping, self.name, raw["ID"])

    def changed_since(self, kind: str, since: datetime) -> Iterator[Record]:
        """``crm.<kind>.list`` filtered by ``>DATE_MODIFY``, every page
        (D:api-reference/crm/deals/crm-deal-list.md: a filter key takes an operator prefix)."""
        code = self.mapping.field_code(kind, "modified_at")
        when = since.isoformat(timespec="seconds")
        params = {"filter": {f">{code}": when}, "select": _select(kind)}
        for raw in self.get_all(f"crm.{kind}.list", params):
            yield bitrix_record(kind, raw, self.mapping, self.name, raw["ID"])

    def contact_email(self, record: Record) -> str | None:
        """The first e-mail of a lead, or of a deal's contact (D:.../contacts/crm-contact-get.md).

        A lead's record holds its first e-mail already (:func:`bitrix_record`).
        """
        if record.kind == "deal":
            return first_value(self._contact(record).get("EMAIL")) or None
        return str(record.fields.get("email") or "") or None

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

    def history(self, kind: str, since: datetime) -> Iterator[Step]:
        """Stage moves of ``crm.stagehistory.list`` (:func:`bridge.crms.bitrix24.history.steps`)."""
        return history.steps(self, kind, since)

    # -- writing ------------------------------------------------------------------------

    def execute_many(self, plans: Sequence[tuple[Record, Sequence[Action]]]) -> dict[str, Outcome]:
        """Every action of every record, 50 commands to a ``batch``: a batch of events costs
        the portal one request of writes, not one per record."""
        commands = [(a.key, a, self._command(record, a)) for record, acts in plans for a in acts]
        out: dict[str, Outcome] = {}
        for start in range(0, len(commands), BATCH):
            chunk = commands[start : start + BATCH]
            try:
                body = self.call("batch", {"halt": 0, "cmd": {k: c for k, _, c in chunk}})
            except TransientError as exc:
                out.update({k: Outcome.retry(exc) for k, _, _ in chunk})
                continue
            except PermanentError as exc:
                out.update({k: Outcome("failed", error=str(exc)) for k, _, _ in chunk})
                continue
            results, errors = body.get("result") or {}, body.get("result_error") or {}
            out.update({k: _outcome(a, results.get(k), errors.get(k)) for k, a, _ in chunk})
        return out

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
            "XML_ID": MARKER + key,
            "PRIORITY": PRIORITY[p.priority],
        }
        if record.crm == self.name:  # a paired tenant's record is no entity of this portal
            fields["UF_CRM_TASK"] = [f"{ENTITY[record.kind][1]}_{record.id}"]
        if p.deadline:
            fields["DEADLINE"] = _datetime(p.deadline)
        return fields

    # -- transport ----------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One REST call; returns its ``result`` (errors: :class:`Rest`)."""
        return self.rest.call(method, params)

    def get_all(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a list method (errors as :meth:`call`)."""
        return self.rest.get_all(method, params)


def _activity_key(event: Event) -> str:
    return f"{event.id}:{event.subject}"


def _owner(event: Event, activity: dict[str, Any]) -> RecordRef:
    kind = OWNER_KINDS.get(str(activity.get("OWNER_TYPE_ID")))
    if kind is None:
        raise PermanentError(f"activity {event.subject} belongs to no deal or lead")
    return RecordRef(kind, str(activity["OWNER_ID"]))


def _open_activities(ref: RecordRef) -> dict[str, Any]:
    """``crm.activity.list``'s params for a record's open activities, the nearest first."""
    return {
        "filter": {"OWNER_TYPE_ID": ENTITY[ref.kind][0], "OWNER_ID": ref.id, "COMPLETED": "N"},
        "order": {"DEADLINE": "ASC"},
        "select": ["ID", "DEADLINE"],
    }


def _marked(found: dict[str, Any], action: Action) -> dict[str, str] | None:
    """The task of ``tasks.task.list``'s answer that carries the action's XML_ID marker."""
    for task in found.get("tasks", []):
        if task.get("xmlId") == MARKER + action.key:
            return {"task_id": str(task["id"])}
    return None


def _outcome(action: Action, result: Any, error: dict[str, Any] | None) -> Outcome:
    if error:
        exc = classify(200, error, action.kind)
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


def _select(kind: str) -> list[str]:
    """A list's ``select``: every field and user field, and a lead's e-mails and phones, which
    the masks leave out (multiple fields must be named: D:api-reference/crm/leads/crm-lead-list.md,
    shared/reference/bitrix24.md «crm.deal.list»)."""
    return ["*", "UF_*", "EMAIL", "PHONE"] if kind == "lead" else ["*", "UF_*"]
