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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bridge import clock
from bridge.actions import AddComment, UpdateFields
from bridge.calendar import as_datetime
from bridge.crms.base import CRM
from bridge.crms.connector import Connector, Outcome, Step, crm_value, to_record
from bridge.crms.onec import OneC, OneCSettings
from bridge.crms.onec.files import ERRORS, read_orders
from bridge.crms.onec.odata import ODataClient, order_of
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
        self._odata: ODataClient | None = None

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
                self._keep(Kept(order, digest, stamp, upload))
                items.append(self._incoming(order, digest, known is None, source, upload))
        return items

    def _keep(self, kept: Kept) -> None:
        """Store an order's new state and, when its status changed, the move (for
        :meth:`history`): since the order's own «status changed» date where it has one
        (mapped to ``stage_since``), else since the bridge saw it (call under the lock)."""
        self.store.put(kept)
        record = self._record(kept, Changes(kept.order.id))
        told = as_datetime(record.fields.get("stage_since"), self.zone)
        seen = datetime.fromisoformat(kept.seen_at)
        before = self.store.moves(kept.order.id)
        after = datetime.fromisoformat(before[-1][0]) if before else None
        at = _entered(told, seen, after)
        status = kept.order.fields(self.options.status, self.options.flags)["Статус"]
        self.store.moved(kept.order.id, at.isoformat(), status)

    def history(self, kind: str, since: datetime) -> Iterator[Step]:
        """The orders' statuses in turn since a moment, from the store (what 1C's exchange,
        ``bridge import-1c`` and reconciliation brought), oldest first; read only.

        An order starts at its own date (``Дата``) in the first status the bridge knew; each
        later status at the moment it was entered. The other fields are the order's current
        ones. An order pruned from the store (``keep_closed_days``) has no history left.
        """
        if kind != KIND:
            return iter(())
        steps = [s for kept in self.store.orders() for s in self._steps(kept, since)]
        return iter(sorted(steps, key=lambda s: s.at))

    def _steps(self, kept: Kept, since: datetime) -> list[Step]:
        raw = kept.order.fields(self.options.status, self.options.flags)
        moves = self.store.moves(kept.order.id) or [(kept.seen_at, raw["Статус"])]
        born = as_datetime(kept.order.date, self.zone)
        out = []
        for index, (at, status) in enumerate(moves):
            moment = datetime.fromisoformat(at)
            if index == 0 and born is not None:
                moment = min(moment, born)
            if moment >= since:
                record = to_record(
                    KIND, raw | {"Статус": status}, self.mapping, self.name, kept.order.id
                )
                out.append(Step(moment, record, created=index == 0))
        return out

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

    def changed_since(self, kind: str, since: datetime) -> Iterator[Record] | None:
        """Reconciliation through OData (None where it is not configured: 1C then only
        pushes): the orders 1C changed since ``since`` that the store does not hold as they
        are now — orders its exchange never carried (created in 1C, outside the node's
        filter) and changes an exchange has not brought yet. Each is kept in the store, so
        that the events reconciliation feeds read it like an uploaded one."""
        if kind != KIND or self.options.odata is None:
            return None
        return iter(self._reconciled(since))

    def _reconciled(self, since: datetime) -> list[Record]:
        odata, now = self.options.odata, clock.utcnow()
        assert odata is not None
        fresh = [
            order_of(entity, odata, self.options.status, self.zone)
            for entity in self.odata().changed(since, now)
        ]
        ids = self._ids_by_ref_key() if odata.key != "Ид" else {}
        stamp, out = now.astimezone(UTC).isoformat(), []
        with self.store.lock():
            for order in fresh:
                order_id = ids.get(order.id, order.id)
                known = self.store.order(order_id)
                merged = replace(order, id=order_id) if known is None else known.order.merged(order)
                digest = merged.digest()
                if known is not None and known.digest == digest:
                    continue
                kept = Kept(merged, digest, stamp, f"odata:{stamp}")
                self._keep(kept)
                out.append(self._record(kept, self.store.changes(order_id)))
        return out

    def _ids_by_ref_key(self) -> dict[str, str]:
        """Ref_Key -> the order's id, where the orders' ``Ид`` is not 1C's GUID (odata.key)."""
        out = {}
        for record in self._records():
            try:
                out[self.odata().ref_key(record)] = record.id
            except PermanentError:
                continue  # an order without a Ref_Key: OData cannot name it
        return out

    def contact_email(self, record: Record) -> str | None:
        """The buyer's e-mail from the order's counterparty (canonical ``email``)."""
        return str(record.fields.get("email") or "") or None

    def user_email(self, user_id: str) -> str | None:
        """From the settings' ``user_emails`` (by alias or id): 1C has no user API."""
        for who, address in self.options.user_emails.items():
            if who == user_id or self.mapping.user(who) == user_id:
                return address
        return None

    # -- housekeeping (bridge cron) -----------------------------------------------------

    def silence(self) -> list[str]:
        """The exchange's silence, as a problem: no session for ``silent_minutes`` (and again
        after each further ``silent_minutes`` of it). Nothing before the first exchange."""
        minutes, last = self.options.silent_minutes, self.store.last_exchange()
        if minutes is None or last is None:
            return []
        now, interval = clock.utcnow(), timedelta(minutes=minutes)
        said = self.store.silence_alerted()
        if now - last < interval or (said is not None and said > last and now - said < interval):
            return []
        self.store.silence_alerted(now)
        local = last.astimezone(ZoneInfo(self.zone))
        hours = (now - last).total_seconds() / 3600
        return [
            f"1C has not exchanged with the bridge for {hours:.1f} h (last session "
            f"{local:%d.%m.%Y %H:%M}): check the exchange node's schedule, its login and the "
            "answers in the journal"
        ]

    def prune(self) -> str:
        """Forget the closed orders 1C has not changed for ``keep_closed_days`` (those whose
        changes 1C has taken), the uploads kept as long, and what exchanges left unfinished
        for longer than a session lives; returns a summary."""
        now = clock.utcnow()
        cutoff = now - timedelta(days=self.options.keep_closed_days)
        gone = 0
        with self.store.lock():
            for kept in self.store.orders():
                changes = self.store.changes(kept.order.id)
                if datetime.fromisoformat(kept.seen_at) >= cutoff or changes.pending:
                    continue
                if self._record(kept, changes).outcome != OPEN:
                    self.store.forget(kept.order.id)
                    gone += 1
            stale = now - timedelta(seconds=self.options.session_ttl)
            files = self.store.prune_files(cutoff.timestamp(), stale.timestamp())
        return f"{gone} closed order(s) forgotten, {files} stale file(s) removed"

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

    def odata(self) -> ODataClient:
        """The OData writer (built on first use: it needs the password)."""
        if self._odata is None:
            assert self.options.odata is not None
            password = self.tenant.secret("odata_password")
            self._odata = ODataClient(self, self.options.odata, password)
        return self._odata


def _entered(told: datetime | None, seen: datetime, after: datetime | None) -> datetime:
    """When an order entered its status: 1C's own date where it is believable (not before
    the last move the bridge noted, not after the bridge saw it), else when the bridge saw it."""
    if told is None or told > seen or (after is not None and told < after):
        return seen
    return told


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
