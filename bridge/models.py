"""The canonical model: the words the regulations speak, whatever the CRM.

Frozen dataclasses so that a plan can be compared in scenario tests and printed in a dry run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.actions import ActionParams

OPEN, WON, LOST = "open", "won", "lost"
OUTCOMES = (OPEN, WON, LOST)

EVENT_TYPES = (
    "record.created",
    "record.updated",
    "stage.changed",
    "activity.created",
    "activity.updated",
    "activity.completed",
    "timer.due",
    "sweep",
    "broadcast",
)
"""``stage.changed`` and ``activity.completed`` are derived by the engine (from the snapshot,
from the activity); ``broadcast`` runs only through ``bridge broadcast``."""


@dataclass(frozen=True)
class RecordRef:
    """Which record: ``deal 42`` of a tenant's CRM."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


@dataclass(frozen=True)
class Record:
    """A CRM entity translated by the tenant's mapping.

    Attributes:
        stage: canonical stage name, or the CRM's stage id when the mapping names none.
        outcome: ``open``, ``won`` or ``lost``, taken from the CRM's stage semantics.
        fields: canonical custom fields (``refusal_reason``, ``next_contact_at``...).
    """

    kind: str
    id: str
    crm: str
    stage: str | None = None
    outcome: str = OPEN
    responsible: str | None = None
    title: str = ""
    amount: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> RecordRef:
        """This record's reference."""
        return RecordRef(self.kind, self.id)

    def in_stage(self, name: str) -> bool:
        """True when the record stands in ``name``: a canonical stage or an outcome."""
        return name == self.stage or name == self.outcome

    def value(self, name: str) -> Any:
        """A canonical field's value; standard attributes first, then custom fields."""
        if name in _STANDARD:
            return getattr(self, name)
        return self.fields.get(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the snapshot the pipeline stores)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "crm": self.crm,
            "stage": self.stage,
            "outcome": self.outcome,
            "responsible": self.responsible,
            "title": self.title,
            "amount": self.amount,
            "fields": dict(self.fields),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "fields": dict(data.get("fields") or {})})


_STANDARD = {"kind", "id", "crm", "stage", "outcome", "responsible", "title", "amount"}
STANDARD_FIELDS = frozenset(_STANDARD)


@dataclass(frozen=True)
class Event:
    """Something happened to a record. Built by ingress, kept in the journal.

    Attributes:
        type: one of :data:`EVENT_TYPES`.
        source: the CRM's own event name (``ONCRMDEALUPDATE``), for the journal.
        subject: for ``activity.created``, the activity's id; the record is its owner.
    """

    tenant: str
    crm: str
    type: str
    ref: RecordRef
    received_at: datetime
    source: str = ""
    id: int | None = None
    subject: str | None = None


@dataclass(frozen=True)
class Action:
    """One thing to do about a record, with the key that makes doing it twice impossible.

    ``params`` is one of the models of :mod:`bridge.actions`, holding canonical values;
    the connector (or the mailer) translates them into the CRM's words.
    """

    key: str
    rule: str
    ref: RecordRef
    params: ActionParams

    @property
    def kind(self) -> str:
        """The action kind's name (``create_task``...)."""
        return self.params.kind

    def describe(self) -> str:
        """One human line, as `bridge journal` and the demo print it."""
        return self.params.describe()


@dataclass(frozen=True)
class LookupQuery:
    """Records to find for a rule: ``kind`` records whose fields equal ``where``."""

    kind: str
    where: tuple[tuple[str, str], ...]
    open_only: bool = False
    exclude: RecordRef | None = None
    in_stage: tuple[str, ...] = ()


BREACHES = ("missing", "overdue")
"""What breaking a rule can mean: required fields are empty, or a deadline passed."""


@dataclass(frozen=True)
class Decision:
    """A rule's verdict on one event: why it did or did not act.

    Attributes:
        breach: ``missing`` or ``overdue`` when this verdict means the rule was broken
            (what the admin pages count as a violation), else empty.
        due: when the timer this verdict set will fire (``scheduled``, or a step that set
            the next one); the SLA report measures deadlines from it.
    """

    rule: str
    verdict: str  # fired | satisfied | not_matched | scheduled
    detail: str = ""
    breach: str = ""
    due: datetime | None = None


@dataclass(frozen=True)
class Timer:
    """An SLA check to run later: at ``due``, re-read the record and re-evaluate ``rule``.

    The id is derived from tenant, record, rule, step and stay, so a repeated event schedules
    the same timer (moved, never doubled).
    """

    id: str
    rule: str
    step: int
    due: datetime
    ref: RecordRef
    stay: str

    @property
    def subject(self) -> str:
        """How a ``timer.due`` event names the timer: ``rule|step|stay``."""
        return f"{self.rule}|{self.step}|{self.stay}"


@dataclass(frozen=True)
class Plan:
    """What the regulations want done about one event, and why."""

    actions: tuple[Action, ...] = ()
    decisions: tuple[Decision, ...] = ()
    timers: tuple[Timer, ...] = ()
