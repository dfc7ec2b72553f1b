"""Writing back through 1C's standard OData interface, with optimistic locking; and reading
the orders that changed, for reconciliation.

Platform docs, "Стандартный интерфейс OData" (shared/reference/onec.md §3.1): an entity is
``<url>/<entity>(guid'<Ref_Key>')``, read with ``$format=json``; ``PATCH`` changes the
properties it names; ``If-Match: <DataVersion>`` makes 1C refuse with 412 when the document
changed since it was read. The bridge then reads it again and rebuilds its change on the fresh
document: a comment line is appended to 1C's new comment, and a requisite 1C changed meanwhile
is not overwritten (that action fails, saying so). Never ``DELETE`` (a physical deletion).

Reading: the entity set with ``$filter`` on a date (``Date ge datetime'…'``, local time as 1C
keeps it), ``$orderby``, ``$top``/``$skip`` pages and ``allowedOnly=true`` (a row hidden by
1C's access rights is skipped, not an error); :func:`order_of` makes each entity the order
CommerceML would have carried.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests

from bridge import clock
from bridge.actions import AddComment, UpdateFields
from bridge.crms.connector import Outcome
from bridge.crms.onec import ODataSettings
from bridge.crms.onec.order import Order, local_time, note_line
from bridge.errors import NoAnswer, PermanentError, TransientError
from bridge.masking import redact
from bridge.models import Action, Record

if TYPE_CHECKING:
    from bridge.crms.onec.connector import OneCConnector
    from bridge.crms.onec.store import Store

ATTEMPTS = 3
"""Reads and PATCHes before a document 1C keeps changing is left to a later retry."""
SLOT_WAIT = 30.0


class Conflict(Exception):
    """412: the document changed since the bridge read its DataVersion."""


@dataclass
class _Plan:
    """One attempt's PATCH body and what each action contributes to it."""

    body: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


class ODataClient:
    """Comments and requisites of 1C orders, written with ``If-Match``; orders read."""

    def __init__(self, conn: OneCConnector, settings: ODataSettings, password: str) -> None:
        self.conn, self.settings = conn, settings
        self.http = requests.Session()
        self.http.auth = (settings.login, password)
        self.http.headers.update({"Accept": "application/json"})

    def execute(
        self, record: Record, actions: Sequence[Action], store: Store
    ) -> dict[str, Outcome]:
        """Carry out the actions in one PATCH, rebuilt on fresh data after each 412."""
        ref = self.ref_key(record)
        seen: dict[str, Any] | None = None
        for _ in range(ATTEMPTS):
            version, entity = self.get(ref)
            seen = seen or entity
            plan = self._plan(entity, seen, actions)
            try:
                if plan.body:
                    self.patch(ref, version, plan.body)
            except Conflict:
                continue
            self._remember(store, record, plan)
            return plan.outcomes
        error = f"1C changed order {record.id} during each of {ATTEMPTS} attempts (412)"
        return {a.key: Outcome("retry", error=error) for a in actions}

    def _plan(
        self, entity: dict[str, Any], seen: dict[str, Any], actions: Sequence[Action]
    ) -> _Plan:
        plan, now = _Plan(), clock.utcnow()
        comment = str(entity.get(self.settings.comment) or "")
        for action in actions:
            p = action.params
            if isinstance(p, AddComment):
                line = note_line(p.text, now, self.conn.zone)
                plan.lines.append(line)
                comment = f"{comment}\n{line}" if comment else line
                plan.body[self.settings.comment] = comment
                plan.outcomes[action.key] = Outcome("done", {"via": "odata", "line": line})
            elif isinstance(p, UpdateFields):
                plan.outcomes[action.key] = self._fields(p, entity, seen, plan.body)
            else:
                plan.outcomes[action.key] = Outcome("failed", error=f"1C cannot {action.kind}")
        return plan

    def _fields(
        self, p: UpdateFields, entity: dict[str, Any], seen: dict[str, Any], body: dict[str, Any]
    ) -> Outcome:
        change = {}
        for name, value in p.fields.items():
            prop = self.settings.fields.get(name)
            if prop is None:
                return Outcome("failed", error=f"no OData property is mapped to {name!r}")
            if entity.get(prop) != seen.get(prop):
                return Outcome("failed", error=f"1C changed {prop} meanwhile: not overwritten")
            change[prop] = value
        body.update(change)
        return Outcome("done", {"via": "odata", "set": sorted(change)})

    def _remember(self, store: Store, record: Record, plan: _Plan) -> None:
        with store.lock():
            changes = store.changes(record.id)
            for key, outcome in plan.outcomes.items():
                if outcome.status == "done":
                    changes.keys[key] = outcome.result
            changes.version += 1
            changes.delivered = changes.version  # 1C has it already: nothing for query
            store.put_changes(changes)

    def find_done(self, record: Record, action: Action) -> Any | None:
        """After a crash between the PATCH and the store: the note in 1C's comment."""
        if not isinstance(action.params, AddComment):
            return None
        _, entity = self.get(self.ref_key(record))
        text = " ".join(action.params.text.split())
        comment = str(entity.get(self.settings.comment) or "")
        found = [line for line in comment.splitlines() if line.endswith(f"] {text}")]
        return {"via": "odata", "line": found[-1]} if found else None

    def ref_key(self, record: Record) -> str:
        """The document's Ref_Key: the order's ``Ид`` (or the configured field) up to ``#``."""
        raw = record.id if self.settings.key == "Ид" else record.value(self.settings.key)
        key = str(raw or "").partition("#")[0].strip()
        if len(key) != 36:
            raise PermanentError(f"order {record.id}: {key[:40]!r} is no Ref_Key (a GUID)")
        return key

    def changed(self, since: datetime, now: datetime) -> Iterator[dict[str, Any]]:
        """The orders changed after ``since`` (by ``modified``), or, when the configuration
        keeps no such time, every order dated within ``window_days`` of ``now``; paged."""
        zone = ZoneInfo(self.conn.zone)
        prop, op, moment = self.settings.modified, "gt", since
        if prop is None:
            prop, op = "Date", "ge"
            moment = now - timedelta(days=self.settings.window_days)
        local = moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")
        params = {
            "$format": "json",
            "allowedOnly": "true",
            "$filter": f"{prop} {op} datetime'{local}'",
            "$orderby": "Date asc,Ref_Key asc",
            "$top": str(self.settings.page),
        }
        url = f"{self.settings.url.rstrip('/')}/{self.settings.entity}"
        for skip in itertools.count(0, self.settings.page):
            page = self._request("GET", url, params=params | {"$skip": str(skip)}).json()
            rows = page.get("value") or []
            yield from rows
            if len(rows) < self.settings.page:
                return

    # -- HTTP ---------------------------------------------------------------------------

    def url(self, ref: str) -> str:
        """The entity's address."""
        return f"{self.settings.url.rstrip('/')}/{self.settings.entity}(guid'{ref}')"

    def get(self, ref: str) -> tuple[str, dict[str, Any]]:
        """The document and its DataVersion."""
        entity = self._send("GET", ref).json()
        return str(entity.get("DataVersion") or ""), entity

    def patch(self, ref: str, version: str, body: dict[str, Any]) -> None:
        """Change the named properties, if the document is still at ``version``.

        Raises:
            Conflict: 412, it changed.
        """
        self._send("PATCH", ref, json=body, headers={"If-Match": version})

    def _send(self, method: str, ref: str, **kwargs: Any) -> requests.Response:
        answer = self._request(method, self.url(ref), params={"$format": "json"}, **kwargs)
        if answer.status_code == 412:
            raise Conflict(ref)
        return answer

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request at the shared pace; 412 is the caller's, other errors raise.

        Raises:
            TransientError: no answer, 5xx or 429.
            PermanentError: another 4xx.
        """
        if self.conn.limiter is not None:
            self.conn.limiter.acquire(timeout=SLOT_WAIT)
        try:
            answer = self.http.request(method, url, timeout=self.conn.options.timeout, **kwargs)
        except requests.RequestException as exc:
            why = NoAnswer.why(exc, self.conn.options.timeout)
            raise NoAnswer(f"OData {method}: {why}") from None
        if answer.status_code == 412:
            return answer
        if answer.status_code >= 500 or answer.status_code == 429:
            raise TransientError(f"OData {method}: HTTP {answer.status_code}")
        if answer.status_code >= 400:
            text = redact(answer.text[:300])
            raise PermanentError(f"OData {method}: HTTP {answer.status_code}: {text}")
        return answer


def order_of(entity: dict[str, Any], settings: ODataSettings, status: str, zone: str) -> Order:
    """An OData order as the order CommerceML would have carried: its Ref_Key as ``Ид``, its
    status (translated by ``statuses``) under the exchange's status requisite, a deletion
    mark as the exchange writes it, and the properties of ``read`` as their requisites."""
    raw = str(entity.get(settings.status) or "")
    requisites = {status: settings.statuses.get(raw, raw)}
    if entity.get("DeletionMark") is True:
        requisites["ПометкаУдаления"] = "true"
    requisites |= {name: _text(entity.get(prop)) for prop, name in settings.read.items()}
    return Order(
        id=str(entity["Ref_Key"]),
        number=str(entity.get("Number") or ""),
        date=local_time(str(entity.get("Date") or ""), "", zone),
        operation="Заказ товара",
        role="Продавец",
        amount=_text(entity.get(settings.amount)),
        comment=str(entity.get(settings.comment) or ""),
        requisites=tuple(requisites.items()),
    )


def _text(value: Any) -> str:
    """A property's value as the exchange writes it: booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
