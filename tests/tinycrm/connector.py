"""TinyCRM's connector: JSON over REST, one request per action."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import requests

from bridge.actions import AddComment, CreateTask, MoveStage, Reassign, UpdateFields
from bridge.crms.base import CRM
from bridge.crms.connector import Connector, Outcome, to_crm_fields, to_record
from bridge.errors import PermanentError, TransientError
from bridge.models import Action, Event, LookupQuery, Record, RecordRef
from tests.tinycrm import TinyCRM


class TinyConnector(Connector):
    """A TinyCRM account."""

    crm: ClassVar[type[CRM]] = TinyCRM

    def __init__(self, tenant: Any, **parts: Any) -> None:
        super().__init__(tenant, **parts)
        self.http = requests.Session()
        self.http.headers["X-Api-Key"] = tenant.secret("api_key")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request, rate-limited; 5xx and network errors are transient."""
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            answer = self.http.request(
                method, self.options.base_url + path, timeout=self.options.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise TransientError(f"{method} {path}: {type(exc).__name__}") from None
        if answer.status_code >= 500:
            raise TransientError(f"{method} {path}: HTTP {answer.status_code}")
        if answer.status_code >= 400:
            raise PermanentError(f"{method} {path}: HTTP {answer.status_code}")
        return answer.json()

    def fetch(self, ref: RecordRef) -> Record:
        return self._record(self.call("GET", f"/api/deals/{ref.id}"))

    def _record(self, raw: dict[str, Any]) -> Record:
        return to_record("deal", raw, self.mapping, self.name, str(raw["id"]))

    def subject_owner(self, event: Event) -> RecordRef:
        return event.ref

    def execute(self, record: Record, actions: Sequence[Action]) -> dict[str, Outcome]:
        return {a.key: self._one(record, a) for a in actions}

    def _one(self, record: Record, action: Action) -> Outcome:
        p, deal = action.params, f"/api/deals/{record.id}"
        if isinstance(p, CreateTask):
            due = p.deadline.isoformat() if p.deadline else None
            body = {"deal_id": record.id, "title": p.title, "owner": p.responsible, "due": due}
            return Outcome(
                "done", self.call("POST", "/api/tasks", json={**body, "key": action.key})
            )
        if isinstance(p, AddComment):
            return Outcome(
                "done",
                self.call("POST", "/api/comments", json={"deal_id": record.id, "text": p.text}),
            )
        if isinstance(p, UpdateFields):
            return Outcome(
                "done", self.call("PATCH", deal, json=to_crm_fields("deal", p.fields, self.mapping))
            )
        if isinstance(p, MoveStage):
            return Outcome(
                "done",
                self.call("PATCH", deal, json={"stage": self.mapping.stage_id("deal", p.stage)}),
            )
        if isinstance(p, Reassign):
            return Outcome("done", self.call("PATCH", deal, json={"owner": p.responsible}))
        return Outcome("failed", error=f"TinyCRM cannot {action.kind}")

    def find_done(self, record: Record, action: Action, since: datetime) -> Any | None:
        tasks = self.call("GET", "/api/tasks", params={"deal_id": record.id})
        return next(({"task_id": t["id"]} for t in tasks if t["key"] == action.key), None)

    def find(self, query: LookupQuery) -> list[Record]:
        where = {self.mapping.field_code("deal", k): v for k, v in query.where}
        found = [self._record(raw) for raw in self.call("GET", "/api/deals", params=where)]
        return [r for r in found if not (query.exclude and r.ref == query.exclude)]

    def list_open(self, kind: str) -> Iterator[Record]:
        yield from (
            self._record(raw) for raw in self.call("GET", "/api/deals", params={"state": "open"})
        )

    def contact_email(self, record: Record) -> str | None:
        return None

    def user_email(self, user_id: str) -> str | None:
        return None
