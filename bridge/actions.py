"""What the bridge can do about a record: one model per action kind, one table of kinds.

The engine renders a rule's ``then`` into these (canonical values: user ids, canonical field
and stage names, aware datetimes); a connector translates them into its CRM's words. Each
model says who carries it out: the record's CRM (``crm``), or the bridge itself (``bridge``:
e-mail goes through the tenant's mailer, a messenger message through apprise, a table row into a
file or a Google Sheet, whatever the CRM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Union, get_args

from bridge.masking import redact

By = Literal["crm", "bridge"]


@dataclass(frozen=True)
class CreateTask:
    """A task bound to the record, for a person, with a deadline."""

    kind: ClassVar[str] = "create_task"
    by: ClassVar[By] = "crm"

    title: str
    responsible: str | None
    description: str = ""
    deadline: datetime | None = None
    priority: Literal["low", "normal", "high"] = "normal"

    def describe(self) -> str:
        """One human line."""
        due = self.deadline.isoformat(timespec="minutes") if self.deadline else "none"
        return f"task «{self.title}» for user {self.responsible}, due {due}"


@dataclass(frozen=True)
class AddComment:
    """A comment in the record's timeline (a note in amoCRM)."""

    kind: ClassVar[str] = "add_comment"
    by: ClassVar[By] = "crm"

    text: str

    def describe(self) -> str:
        """One human line."""
        return f"comment «{self.text}»"


@dataclass(frozen=True)
class UpdateFields:
    """Canonical fields set to values."""

    kind: ClassVar[str] = "update_fields"
    by: ClassVar[By] = "crm"

    fields: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One human line."""
        return "set " + ", ".join(f"{k}={v!r}" for k, v in self.fields.items())


@dataclass(frozen=True)
class MoveStage:
    """The record moved to a canonical stage (or ``won`` / ``lost``)."""

    kind: ClassVar[str] = "move_stage"
    by: ClassVar[By] = "crm"

    stage: str

    def describe(self) -> str:
        """One human line."""
        return f"move to stage {self.stage}"


@dataclass(frozen=True)
class Reassign:
    """The record given to another user (a role's member at work)."""

    kind: ClassVar[str] = "reassign"
    by: ClassVar[By] = "crm"

    responsible: str | None
    role: str = ""

    def describe(self) -> str:
        """One human line."""
        return f"reassign to user {self.responsible}"


@dataclass(frozen=True)
class SendEmail:
    """A template e-mail to the client, the responsible, or an address held in a field."""

    kind: ClassVar[str] = "send_email"
    by: ClassVar[By] = "bridge"

    template: str
    to: str = "client"
    region: str | None = None

    def describe(self) -> str:
        """One human line."""
        return f"e-mail «{self.template}» to {self.to}"


@dataclass(frozen=True)
class Notify:
    """A message in a messenger: a team chat, a person, or the client (``to``: a phone or a
    chat id the channel's URL puts in its ``{to}``). A ``signed`` message ends with the
    tenant's signature for the client's ``region``, as a template e-mail does."""

    kind: ClassVar[str] = "notify"
    by: ClassVar[By] = "bridge"

    channel: str
    text: str
    title: str = ""
    to: str | None = None
    signed: bool = False
    region: str | None = None

    def describe(self) -> str:
        """One human line (the recipient masked: it may be a phone)."""
        who = f" to {redact(self.to)}" if self.to else ""
        return f"message to channel {self.channel}{who}: «{redact(self.text)}»"


@dataclass(frozen=True)
class AppendRow:
    """A line added to a table (a CSV or XLSX file, a Google Sheet): column -> text."""

    kind: ClassVar[str] = "append_row"
    by: ClassVar[By] = "bridge"

    table: str
    row: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One human line."""
        return f"row in table {self.table}: " + "; ".join(
            f"{k}={redact(v)}" for k, v in self.row.items()
        )


@dataclass(frozen=True)
class NotRendered:
    """An action a rule planned that could not be made for this record: one of its templates
    failed (a name the record lacks, a refused call, a text past the size limit). It is
    journaled as failed with the reason, never sent, never retried (only ``bridge replay``
    tries it again, once the pack is fixed); the event's other actions still act.

    Attributes:
        kind: the kind of action the rule meant (``create_task``...).
        reason: why it could not be made, for the journal (personal data masked).
    """

    by: ClassVar[By] = "bridge"

    kind: str
    reason: str

    def describe(self) -> str:
        """One human line: why it was not made."""
        return f"not made: {self.reason}"


ActionParams = Union[  # noqa: UP007 - a runtime alias
    CreateTask,
    AddComment,
    UpdateFields,
    MoveStage,
    Reassign,
    SendEmail,
    Notify,
    AppendRow,
    NotRendered,
]

KINDS: dict[str, type[ActionParams]] = {
    cls.kind: cls for cls in get_args(ActionParams) if cls is not NotRendered
}
"""Every action kind by its name: the one table the engine, packs and connectors read."""

CRM_KINDS = frozenset(name for name, cls in KINDS.items() if cls.by == "crm")
"""The kinds a CRM must execute itself (a CRM declares which of them it can)."""
