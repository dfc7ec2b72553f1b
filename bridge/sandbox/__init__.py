"""Local stand-ins for the CRMs, speaking their documented wire formats over real HTTP.

Each CRM's sandbox lives in its own package (``bridge/crms/<name>/sandbox/``); what they share
(a loopback server, a webhook poster, fault injection) lives here. A sandbox offers a
:class:`Stand`: the sandbox dressed as one company's account, on which ``bridge demo`` and
``bridge try`` play, whatever the CRM, in the canonical words of the tenant's mapping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from bridge.config import Tenant


@dataclass(frozen=True)
class Contact:
    """A client of the account: a person with an e-mail and a phone."""

    id: str
    name: str
    email: str
    phone: str


@dataclass(frozen=True)
class Written:
    """Something the bridge wrote into the account: a task, a comment, or a field it set.

    Attributes:
        what: ``task``, ``comment`` or ``field``.
        record: which record, in canonical words (``deal 5``); empty for a task bound to
            none (made for a record of another CRM, whose title names it).
        text: the task's title, the comment, or ``name = value`` of the field.
        responsible: the task's responsible user id.
        deadline: the task's deadline.
        description: the task's description.
    """

    what: str
    record: str
    text: str
    responsible: str = ""
    deadline: datetime | None = None
    description: str = ""

    def line(self) -> str:
        """One human line, as the demo and ``bridge try`` print it."""
        if self.what in ("comment", "field"):
            return (
                f"{self.what} {'on' if self.what == 'comment' else 'of'} {self.record}: {self.text}"
            )
        due = self.deadline.isoformat(timespec="minutes") if self.deadline else "-"
        on = f" ({self.record})" if self.record else ""  # a task of another CRM's record
        return f"task «{self.text}» → user {self.responsible}, deadline {due}{on}"


CONTACTS = (
    ("Анна Смирнова", "anna.smirnova@client.example", "+7 900 000-00-01"),
    ("Борис Кузнецов", "boris.kuznetsov@client.example", "+7 900 000-00-02"),
    ("Вера Павлова", "vera.pavlova@client.example", "+7 900 000-00-03"),
)
"""The clients every stand starts with (``bridge try`` gives each new record one of them)."""


class Stand(ABC):
    """A CRM's sandbox as one tenant's account: seeded, subscribed, played in canonical words.

    The life of a stand: :meth:`start` (the sandbox serves), :meth:`connection` (what the
    tenant's config must say to reach it), :meth:`seed` (its people, pipelines and fields,
    once the tenant is loaded) and :meth:`seed_contacts`, :meth:`connect` (credentials, hooks
    to the bridge); then records are added and changed with canonical kinds, stages and field
    names, translated through the tenant's mapping, calls are logged on them, the account's
    clock is set; :meth:`tasks`, :meth:`comments` and :meth:`fields` list what the bridge
    wrote back.
    """

    demo_tenant: ClassVar[str] = "remarka"
    """The tenant of config/bridge.yaml whose story ``bridge demo`` plays on this stand (a CRM
    whose records are no deals plays another company's story)."""

    leads_link_contact: ClassVar[bool] = True
    """Does a lead made with ``contact=`` name that contact (amoCRM's main contact)? Where it
    only copies the client's e-mail and phone (Bitrix24), a returning client's lead names its
    contact by the ``contact_id`` field."""

    def __init__(self) -> None:
        self.contacts: list[Contact] = []

    @abstractmethod
    def start(self) -> None:
        """Serve the sandbox on loopback."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving."""

    @abstractmethod
    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The tenant's ``connection`` block for this sandbox, and the secrets it names
        (environment variable -> value)."""

    @abstractmethod
    def seed(self, tenant: Tenant) -> None:
        """Create the account's users, pipelines, stages and fields the mapping names."""

    @abstractmethod
    def connect(self, rt: Any, bridge_url: str) -> None:
        """Give the bridge its credentials and subscribe the bridge's hook at ``bridge_url``."""

    @abstractmethod
    def wait_delivered(self) -> None:
        """Block until every webhook the sandbox queued was posted."""

    @abstractmethod
    def add_contact(self, name: str, email: str, phone: str) -> str:
        """A client with an e-mail and a phone; returns its id."""

    @abstractmethod
    def add_record(
        self,
        kind: str,
        title: str,
        stage: str,
        responsible: str,
        *,
        contact: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> str:
        """A manager creates a record of a canonical kind in a canonical stage, for a user
        alias or id, with a client (a contact id) and canonical fields; returns its id."""

    @abstractmethod
    def update_record(
        self, kind: str, record_id: str, *, stage: str | None = None, fields: dict[str, Any]
    ) -> None:
        """A manager moves a record to a canonical stage (``won`` / ``lost`` too) and sets
        canonical fields."""

    @abstractmethod
    def add_call(self, kind: str, record_id: str, *, incoming: bool, completed: bool) -> str:
        """A call is logged on a record (an activity); returns its id.

        Raises:
            ValueError: the CRM logs no calls on its records (the message says so).
        """

    def add_activity(
        self, kind: str, record_id: str, activity_type: str, *, incoming: bool, completed: bool
    ) -> str:
        """An activity of a canonical type (``call``, ``meeting``...) is logged on a record;
        returns its id. A stand logs calls (:meth:`add_call`) unless it says more.

        Raises:
            NotImplementedError: the stand logs no activity of that type (the message says so).
        """
        if activity_type == "call":
            return self.add_call(kind, record_id, incoming=incoming, completed=completed)
        raise NotImplementedError(f"an activity of type {activity_type} (the stand logs calls)")

    @abstractmethod
    def set_clock(self, now: Callable[[], datetime]) -> None:
        """The account's "now" from here on (records' stamps, task dates, hooks)."""

    @abstractmethod
    def tasks(self) -> list[Written]:
        """The tasks made so far, in the order they were made."""

    @abstractmethod
    def comments(self) -> list[Written]:
        """The comments (notes) made so far, in the order they were made."""

    def label(self, kind: str, record_id: str) -> str:
        """What people call a record in this CRM (default: its id; 1C: the order's number)."""
        return record_id

    def seed_contacts(self) -> list[Contact]:
        """Add the stand's clients (:data:`CONTACTS`); returns them."""
        for name, email, phone in CONTACTS:
            self.contacts.append(Contact(self.add_contact(name, email, phone), name, email, phone))
        return self.contacts

    def fields(self) -> list[Written]:
        """The fields the bridge set and no person did, where the sandbox tells them apart
        (1C's requisites, which come back through the exchange); default: none listed."""
        return []

    def written(self) -> list[str]:
        """What the bridge wrote so far (tasks, comments, fields), one human line each."""
        return [w.line() for w in (*self.tasks(), *self.comments(), *self.fields())]
