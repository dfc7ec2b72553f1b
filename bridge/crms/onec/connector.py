"""1C behind the connector interface: orders read from the tenant's store, written back through
the exchange (``mode=query``) or, when configured, 1C's OData interface.

1C pushes; the bridge cannot ask it. So the store (``store.py``) is the bridge's copy of what
1C last uploaded, and :meth:`OneCConnector.expand` is where an upload becomes events: every
order whose content changed since the bridge last saw it is one ``record.created`` or
``record.updated``. Comments and requisites the bridge writes wait in the store until 1C takes
them; meanwhile the record the rules see already carries the requisites (a stamp the bridge
set is not set twice).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from bridge import clock
from bridge.actions import AddComment, UpdateFields
from bridge.crms.base import CRM
from bridge.crms.connector import Connector, Outcome, crm_value, to_record
from bridge.crms.onec import OneC, OneCSettings
from bridge.crms.onec.files import ERRORS, read_orders
from bridge.crms.onec.odata import ODataWriter
from bridge.crms.onec.order import Order, note_line
from bridge.crms.onec.store import Changes, Kept, Store
from bridge.crms.receive import Incoming
from bridge.errors import PermanentError
from bridge.models import OPEN, Action, Event, LookupQuery, Record, RecordRef

log = logging.getLogger(__name__)

KIND = "order"


class OneCConnector(Connector):
    """One 1C infobase's orders, as its exchange with the bridge delivers them."""

    crm: ClassVar[type[CRM]] = OneC
    options: OneCSettings

    def __init__(self, tenant: Any, **parts: Any) -> None:
        super().__init__(tenant, **parts)
        self.store = Store.of(tenant, self.options)
        self.zone = tenant.config.timezone
        self._odata: ODataWriter | None = None

    # -- reading ------------------------------------------------------------------------

    def fetch(self, ref: RecordRef) -> Record:
        """The order as 1C last uploaded it, with the requisites the bridge set since."""
        kept = self.store.order(ref.id)
        if kept is None:
            raise PermanentError(f"order {ref.id} was never uploaded by 1C")
        return self._record(kept, self.store.changes(ref.id))

    def _record(self, kept: Kept, changes: Changes) -> Record:
        raw = kept.order.fields(self.options.status, self.options.flags)
        if changes.pending:
            raw |= changes.requisites
        return to_record(KIND, raw, self.mapping, self.name, kept.order.id)

    def subject_owner(self, event: Event) -> RecordRef:
        """An order's event is about the order."""
        return event.ref

    def expand(self, event: Event) -> list[Incoming]:
        """An upload (``batch`` event, named by its SHA-256) as the events of its orders.

        Every file of it is read before anything is kept: a file that fails leaves no order
        of the upload imported.

        Raises:
            PermanentError: the upload is gone, over a limit, or holds no orders we can read.
        """
        sha = event.ref.id
        try:
            path = self.store.upload(sha)
            found = read_orders(path, path.suffix.lstrip("."), self.options, self.zone)
        except ERRORS as exc:
            raise PermanentError(f"upload {sha[:12]}: {exc}") from None
        mark = f"{sha[:16]}:{event.id}"
        return self.ingest(found, at=event.received_at, upload=mark, source=event.source)

    def ingest(
        self, orders: Sequence[Order], *, at: datetime, upload: str, source: str
    ) -> list[Incoming]:
        """Keep the orders that changed and return their events (for the gate).

        An order is skipped when its content is what the store holds, or a later upload
        already brought it; the same ``upload`` (a mark of one batch event) read again by a
        retried job announces its orders again, and the gate's keys make that harmless.
        """
        stamp = at.astimezone(UTC).isoformat()
        items = []
        with self.store.lock():
            for order in orders:
                digest, known = order.digest(), self.store.order(order.id)
                if _skip(known, digest, stamp, upload):
                    continue
                self.store.put(Kept(order, digest, stamp, upload))
                items.append(self._incoming(order, digest, known is None, source, upload))
        return items

    def _incoming(self, order: Order, digest: str, new: bool, source: str, upload: str) -> Incoming:
        return Incoming(
            tenant=self.tenant.name,
            crm=self.name,
            source=source,
            type="record.created" if new else "record.updated",
            kind=KIND,
            record_id=order.id,
            dedup_key=f"onec:order:{order.id}:{digest[:16]}",
            payload={"number": order.number, "upload": upload[:12]},
        )

    def unseen(self, orders: Sequence[Order]) -> int:
        """How many of these orders the store does not hold as they are (new or changed)."""
        held = {o.id: self.store.order(o.id) for o in orders}
        return sum(1 for o in orders if held[o.id] is None or held[o.id].digest != o.digest())

    def find(self, query: LookupQuery) -> list[Record]:
        """Orders of the store whose canonical fields equal ``query.where``."""
        if query.kind != KIND:
            return []
        return [r for r in self._records() if _matches(r, query)]

    def list_open(self, kind: str) -> Iterator[Record]:
        """Every kept order neither completed nor cancelled."""
        if kind == KIND:
            yield from (r for r in self._records() if r.outcome == OPEN)

    def list_all(self, kind: str) -> Iterator[Record]:
        """Every kept order, completed and cancelled ones too."""
        if kind == KIND:
            yield from self._records()

    def _records(self) -> Iterator[Record]:
        for kept in self.store.orders():
            yield self._record(kept, self.store.changes(kept.order.id))

    def contact_email(self, record: Record) -> str | None:
        """The buyer's e-mail from the order's counterparty (canonical ``email``)."""
        return str(record.fields.get("email") or "") or None

    def user_email(self, user_id: str) -> str | None:
        """From the settings' ``user_emails`` (by alias or id): 1C has no user API."""
        for who, address in self.options.user_emails.items():
            if who == user_id or self.mapping.user(who) == user_id:
                return address
        return None

    # -- writing ------------------------------------------------------------------------

    def execute(self, record: Record, actions: Sequence[Action]) -> dict[str, Outcome]:
        """Comments and requisites: at once through OData when configured, else kept for 1C's
        next ``query``. Each action is recorded by its key, so a retried one is not repeated."""
        if self.options.odata is not None:
            return self.odata().execute(record, actions, self.store)
        now, out = clock.utcnow(), {}
        with self.store.lock():
            changes = self.store.changes(record.id)
            for action in actions:
                out[action.key] = self._apply(changes, action, now)
            self.store.put_changes(changes)
        return out

    def _apply(self, changes: Changes, action: Action, now: datetime) -> Outcome:
        if action.key in changes.keys:
            return Outcome("done", changes.keys[action.key])
        p = action.params
        if isinstance(p, AddComment):
            changes.notes.append(note_line(p.text, now, self.zone))
        elif isinstance(p, UpdateFields):
            try:
                changes.requisites |= self.requisites(p.fields)
            except KeyError as exc:
                return Outcome("failed", error=f"no 1C requisite is mapped to {exc}")
        else:
            return Outcome("failed", error=f"1C cannot {action.kind}")
        changes.version += 1
        result = {"via": "exchange", "version": changes.version}
        changes.keys[action.key] = result
        return Outcome("done", result)

    def requisites(self, fields: dict[str, Any]) -> dict[str, str]:
        """Canonical values as 1C requisites (list values through the mapping's ``values``).

        Raises:
            KeyError: a field the mapping does not tie to a requisite.
        """
        return {
            self.mapping.field_code(KIND, name): str(crm_value(KIND, name, value, self.mapping))
            for name, value in fields.items()
        }

    def find_done(self, record: Record, action: Action, since: datetime) -> Any | None:
        """What the store recorded of an action (or, through OData, the note in 1C's comment).

        The store writes an action's key with its change, so ``since`` is not needed here."""
        done = self.store.changes(record.id).keys.get(action.key)
        if done is None and self.options.odata is not None:
            return self.odata().find_done(record, action)
        return done

    def odata(self) -> ODataWriter:
        """The OData writer (built on first use: it needs the password)."""
        if self._odata is None:
            assert self.options.odata is not None
            password = self.tenant.secret("odata_password")
            self._odata = ODataWriter(self, self.options.odata, password)
        return self._odata


def _skip(known: Kept | None, digest: str, stamp: str, upload: str) -> bool:
    """The store holds this content already, or a later upload's (unless this very upload
    wrote it: a retried job announces its orders again)."""
    if known is None or known.upload == upload:
        return False
    return known.digest == digest or known.seen_at > stamp


def _matches(record: Record, query: LookupQuery) -> bool:
    if query.exclude is not None and record.ref == query.exclude:
        return False
    if query.open_only and record.outcome != OPEN:
        return False
    if query.in_stage and not any(record.in_stage(s) for s in query.in_stage):
        return False
    return all(str(record.value(name) or "") == str(value) for name, value in query.where)
