"""What every connector shares: the small interface and the translation of records.

A connector is built for one tenant and implements a handful of methods; the pipeline never
knows which CRM it talks to. What the CRM *is* (name, settings, record kinds, actions) is
declared once, in its package's ``__init__`` (:class:`bridge.crms.base.CRM`).
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.errors import NoAnswer, PermanentError, TransientError
from bridge.mappings import Mapping
from bridge.models import OPEN, Action, Event, LookupQuery, Record, RecordRef

READ_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0)
"""Seconds before a read is asked again after a transient failure (5xx, rate limit, no answer).
A read changes nothing, so it is asked again at once instead of holding the tenant's whole
stream back for a retry interval (on a flaky portal one batch in five would); a write is never
asked again here: the worker's retry looks for it first (:meth:`Connector.find_done_many`)."""

QUICK_TIMEOUT = 5.0
"""Seconds one request may take while a person waits on its answer (``bridge dry-run``)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Lookup = tuple[Record, Action, datetime]
"""An action an earlier attempt may have carried out: its record, itself, when it was claimed."""

if TYPE_CHECKING:
    import redis

    from bridge.config import Tenant
    from bridge.crms.base import CRM
    from bridge.crms.receive import Incoming
    from bridge.ratelimit import RateLimiter


@dataclass(frozen=True)
class Step:
    """One moment of a record's past, as its CRM remembers it (a backtest replays these).

    Attributes:
        at: when the record entered ``record.stage``.
        record: the record as it stood then: the stage from the CRM's history, the other
            fields as they are now (CRMs keep a history of stages, not of every field).
        created: the record was created at this moment.
    """

    at: datetime
    record: Record
    created: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happened to one action: ``done`` with the CRM's result, or an error."""

    status: str  # done | failed | retry
    result: Any = None
    error: str = ""
    wait: float = 0.0  # retry: seconds before it may be tried at all (a write still landing)
    unanswered: bool = False  # retry: the CRM gave no answer, so the write may still land

    @classmethod
    def retry(cls, exc: TransientError) -> Outcome:
        """A write to try again, saying whether the CRM answered at all."""
        return cls("retry", error=str(exc), unanswered=isinstance(exc, NoAnswer))


class Connector(ABC):
    """One CRM behind the bridge's small interface, built for one tenant.

    Args:
        tenant: the tenant whose CRM this is (its mapping, settings, secrets, zone).
        limiter: the shared rate limit of the CRM account (None: unlimited, in tests).
        shared: the Redis every worker of the bridge shares, for state that must outlive a
            process and be seen by all (amoCRM's token pair). Handed in, never opened here.
        interactive: a person waits on the answer (``bridge dry-run``): a request times out
            after :data:`QUICK_TIMEOUT` at most, and a rate limit's "retry after" is not
            waited out; the error says what happened at once.
    """

    crm: ClassVar[type[CRM]]

    def __init__(
        self,
        tenant: Tenant,
        *,
        limiter: RateLimiter | None = None,
        shared: redis.Redis | None = None,
        interactive: bool = False,
    ) -> None:
        self.tenant = tenant
        self.mapping: Mapping = tenant.mapping
        self.options: Any = self.crm.settings.model_validate(tenant.config.connection)
        if interactive and self.options.timeout > QUICK_TIMEOUT:
            self.options = self.options.model_copy(update={"timeout": QUICK_TIMEOUT})
        self.limiter = limiter
        self.shared = shared
        self.interactive = interactive
        self._batch = threading.local()

    @property
    def name(self) -> str:
        """The CRM's name (``crm:`` in YAML), as records carry it."""
        return self.crm.name

    @abstractmethod
    def fetch(self, ref: RecordRef) -> Record:
        """Read a record and translate it with the tenant's mapping."""

    @abstractmethod
    def subject_owner(self, event: Event) -> RecordRef:
        """The record an event is about (an activity's owner, for ``activity.created``).

        Its kind may be left blank where :meth:`fetch_many` gives the record its kind (an
        amoCRM hook that names a lead but not its pipeline).
        """

    @contextlib.contextmanager
    def reading_batch(self) -> Iterator[None]:
        """Within it, what a batch read at once (:meth:`subject_owners`, :meth:`fetch_many`)
        answers the questions asked about its events one by one afterwards: in this thread
        and for this batch only. A connector is shared by a process's threads (a drainer's
        batches, rq's sweeps), and an answer kept past its batch would be stale."""
        self._batch.memo = {}
        try:
            yield
        finally:
            self._batch.memo = None

    def memo(self) -> dict[str, Any] | None:
        """The current batch's reads in this thread (None outside :meth:`reading_batch`)."""
        return getattr(self._batch, "memo", None)

    def subject_owners(self, events: Sequence[Event]) -> list[RecordRef | PermanentError]:
        """:meth:`subject_owner` of each of a batch's events, in as few requests as the CRM
        allows (default: one by one); an event whose owner the CRM will never give maps to its
        PermanentError.

        The pipeline asks this once per batch, before anything else about its events: a
        connector may read here, at once, what :meth:`activity_of` and
        :meth:`planned_activity` will ask about them one by one afterwards.

        Raises:
            TransientError: the CRM could not be read now.
        """
        out: list[RecordRef | PermanentError] = []
        for event in events:
            try:
                out.append(self.subject_owner(event))
            except PermanentError as exc:
                out.append(exc)
        return out

    def activity_of(self, event: Event) -> dict[str, Any] | None:
        """For ``activity.created``: ``{"type": call|email|meeting|task|other, "direction":
        incoming|outgoing|"", "completed": bool}``; None where the CRM does not say."""
        return None

    def planned_activity(self, record: Record) -> datetime | None:
        """When the record's nearest open activity (call, meeting, task) is due, or None:
        the next contact scheduled in the CRM itself. None where the CRM does not say."""
        return None

    @abstractmethod
    def execute(self, record: Record, actions: Sequence[Action]) -> dict[str, Outcome]:
        """Carry out actions on one record, in as few requests as the CRM allows.

        The record may belong to another CRM (``record.crm != self.name``): a tenant whose own
        CRM has no tasks names this one in ``tasks_in``, and its ``create_task`` actions come
        here. Such a task is made unbound to any entity of this CRM (its text names the
        record); :meth:`find_done` must find it all the same.

        Returns:
            The outcome of each action by its key.

        Raises:
            bridge.errors.TransientError: nothing could be sent now (rate limit, outage).
        """

    def fetch_many(self, refs: Sequence[RecordRef]) -> dict[RecordRef, Record | PermanentError]:
        """Read several records, in as few requests as the CRM allows (default: one each).

        A record the CRM will never give (deleted, no access) maps to its PermanentError.

        Raises:
            TransientError: nothing could be read now.
        """
        out: dict[RecordRef, Record | PermanentError] = {}
        for ref in dict.fromkeys(refs):
            try:
                out[ref] = self.fetch(ref)
            except PermanentError as exc:
                out[ref] = exc
        return out

    def execute_many(self, plans: Sequence[tuple[Record, Sequence[Action]]]) -> dict[str, Outcome]:
        """Carry out the actions of several records (default: :meth:`execute` for each).

        A request that fails fails (or makes wait) only its own actions.
        """
        out: dict[str, Outcome] = {}
        for record, actions in plans:
            try:
                out.update(self.execute(record, actions))
            except TransientError as exc:
                out.update({a.key: Outcome.retry(exc) for a in actions})
            except PermanentError as exc:
                out.update({a.key: Outcome("failed", error=str(exc)) for a in actions})
        return out

    def expand(self, event: Event) -> list[Incoming]:
        """A ``batch`` event (:data:`bridge.models.BATCH`: a file the CRM uploaded) as the
        events of its records, for the gate. Only CRMs that upload files implement it.

        Raises:
            PermanentError: the file cannot be read as records (journaled with the reason).
        """
        raise PermanentError(f"{self.crm.title} sends no batches")

    @abstractmethod
    def find_done(self, record: Record, action: Action, since: datetime) -> Any | None:
        """After a crash mid-action: the CRM's trace of the action (task id, comment id...)
        made at or after ``since`` (when the action was claimed), or None."""

    task_lookup_chunk: ClassVar[int] = 0
    """How many actions' tasks :meth:`find_tasks` looks for at a time (0: one by one)."""

    def find_done_many(self, lookups: Sequence[Lookup]) -> dict[str, Any]:
        """:meth:`find_done` for several actions, by action key: tasks bound to this CRM's
        records :attr:`task_lookup_chunk` at a time (:meth:`find_tasks`), the rest one by one.

        An action that could not be looked for now maps to the error (a
        :class:`TransientError`): it is neither sent nor settled, only its event waits; the
        ones found so far stay found (a flaky CRM must not undo a retry's progress).
        """
        out: dict[str, Any] = {}
        chunked = [(r, a) for r, a, _ in lookups if self._chunked(r, a)]
        for record, action, since in lookups:
            if self._chunked(record, action):
                continue
            try:
                out[action.key] = self.find_done(record, action, since)
            except TransientError as exc:
                out[action.key] = exc
        size = self.task_lookup_chunk
        for chunk in (chunked[i : i + size] for i in range(0, len(chunked), size or 1)):
            try:
                out.update(self.find_tasks(chunk))
            except TransientError as exc:
                out.update({action.key: exc for _, action in chunk})
        return out

    def find_tasks(self, chunk: Sequence[tuple[Record, Action]]) -> dict[str, Any]:
        """The task each action made on its record of this CRM (its trace, or None), by action
        key, in as few requests as the CRM allows; only called if :attr:`task_lookup_chunk`."""
        raise NotImplementedError

    def _chunked(self, record: Record, action: Action) -> bool:
        return (
            bool(self.task_lookup_chunk)
            and action.kind == "create_task"
            and record.crm == self.name
        )

    @abstractmethod
    def find(self, query: LookupQuery) -> list[Record]:
        """Records of ``query.kind`` whose canonical fields equal ``query.where``."""

    @abstractmethod
    def list_open(self, kind: str) -> Iterator[Record]:
        """Every record of a kind that is neither won nor lost (for sweeps), paged."""

    def list_all(self, kind: str) -> Iterator[Record]:
        """Every record of a kind, open and closed alike (a broadcast), paged: by default the
        records changed since the epoch.

        Raises:
            NotImplementedError: the CRM can list neither all records nor the changed ones.
        """
        found = self.changed_since(kind, EPOCH)
        if found is None:
            raise NotImplementedError(f"{self.name} cannot list every {kind}")
        yield from found

    def changed_since(self, kind: str, since: datetime) -> Iterator[Record] | None:
        """Every record of a kind the CRM changed after ``since`` (reconciliation: webhooks
        get lost); None where the CRM cannot say."""
        return None

    @abstractmethod
    def contact_email(self, record: Record) -> str | None:
        """The e-mail address of the record's client, or None."""

    @abstractmethod
    def user_email(self, user_id: str) -> str | None:
        """The e-mail address of a CRM user (a manager), or None."""

    def contact_name(self, record: Record) -> str | None:
        """The name of the record's client (the greeting of an e-mail), or None where the CRM
        does not say."""
        return None

    def user_name(self, user_id: str) -> str | None:
        """A CRM user's name as colleagues and clients see it (an e-mail's signature), or None
        where the CRM does not say."""
        return None

    def history(self, kind: str, since: datetime) -> Iterator[Step]:
        """The stage moves of records of ``kind`` since a moment, oldest first; read only.

        Raises:
            NotImplementedError: the CRM keeps no history the bridge can read.
        """
        raise NotImplementedError(f"{self.crm.title} keeps no stage history the bridge can read")


def to_record(kind: str, raw: dict[str, Any], mapping: Mapping, crm: str, record_id: str) -> Record:
    """Translate a CRM entity into the canonical record with a mapping.

    The mapping's ``fields`` name the CRM codes of the standard attributes (stage, outcome,
    responsible, title, amount) and of every canonical custom field.
    """
    km = mapping.kind(kind)
    codes = km.fields
    values = {name: _value(km.values.get(name), raw.get(code)) for name, code in codes.items()}
    stage = values.pop("stage", None)
    outcome = km.outcomes.get(str(values.pop("outcome", "")), OPEN)
    return Record(
        kind=kind,
        id=str(record_id),
        crm=crm,
        stage=mapping.stage_name(kind, stage) if stage is not None else None,
        outcome=outcome,
        responsible=_text(values.pop("responsible", None)),
        title=_text(values.pop("title", None)) or "",
        amount=_number(values.pop("amount", None)),
        fields=values,
    )


def to_crm_fields(kind: str, fields: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """Canonical field values -> the CRM's field codes (list values mapped back)."""
    return {mapping.field_code(kind, n): crm_value(kind, n, v, mapping) for n, v in fields.items()}


def crm_value(kind: str, name: str, value: Any, mapping: Mapping) -> Any:
    """A canonical value -> the CRM's (list items through the mapping's ``values``)."""
    reverse = {v: k for k, v in mapping.kind(kind).values.get(name, {}).items()}
    return reverse.get(value, value)


def _value(values: dict[str, str] | None, raw: Any) -> Any:
    if values and raw is not None:
        return values.get(str(raw), raw)
    return raw


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
