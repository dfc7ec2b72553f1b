"""The actions a rule's ``then`` may list, as written in YAML: each spec validates its keys
and renders itself, for one firing, into the typed action of :mod:`bridge.actions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from bridge import actions, yamlfile
from bridge.deadlines import parse_deadline
from bridge.regulations.conditions import deadline_text
from bridge.yamlfile import Strict

ACTION_NAMES = tuple(actions.KINDS)


class Renderer(Protocol):
    """What an action spec needs to become an action: the engine's view of one firing."""

    def text(self, source: str) -> str:
        """A template rendered with the record, the look-ups and the time."""

    def value(self, value: Any) -> Any:
        """A field value to write: text rendered as a template, anything else as it is."""

    def person(self, spec: str, fallback: str | None = None) -> str | None:
        """A user id for ``responsible``, a role, an alias or a template."""

    def deadline(self, expression: str | None, field_time: str | None) -> datetime | None:
        """A deadline from an expression, or from the time a field holds."""

    def field(self, name: str) -> Any:
        """A canonical field of the record."""


def split_field_time(text: str) -> tuple[str, str | None]:
    """``"visit_at + 70 minutes"`` -> ``("visit_at", "70 minutes")``; a bare field: no offset."""
    field, _, offset = text.partition("+")
    return field.strip(), offset.strip() or None


def field_time_text(value: str | None) -> str | None:
    if value is not None:
        _, offset = split_field_time(value)
        if offset:
            parse_deadline(offset)  # raises ValueError listing the accepted forms
    return value


class CreateTask(Strict):
    """Create a task bound to the record."""

    title: str
    description: str = ""
    responsible: str = Field(
        default="responsible",
        description="'responsible' (the record's), a user alias of the mapping, or a role",
    )
    deadline: str | None = Field(default=None, description="a deadline expression")
    deadline_at: str | None = Field(
        default=None, description="instead: the time held in a field, optionally '+ <expression>'"
    )
    fallback: str | None = Field(
        default=None, description="role or user when nobody of `responsible` is at work"
    )
    priority: Literal["low", "normal", "high"] = "normal"
    checklist: list[str] = Field(default_factory=list)

    _deadline = field_validator("deadline")(deadline_text)
    _deadline_at = field_validator("deadline_at")(field_time_text)

    def render(self, r: Renderer) -> actions.CreateTask:
        """The task this spec makes for one firing."""
        description = r.text(self.description)
        if self.checklist:
            items = "\n".join(f"☐ {r.text(item)}" for item in self.checklist)
            description = f"{description}\n\n{items}".strip()
        return actions.CreateTask(
            title=r.text(self.title),
            description=description,
            responsible=r.person(self.responsible, self.fallback),
            deadline=r.deadline(self.deadline, self.deadline_at),
            priority=self.priority,
        )


class AddComment(Strict):
    """Add a comment to the record's timeline."""

    text: str

    def render(self, r: Renderer) -> actions.AddComment:
        """The comment for one firing."""
        return actions.AddComment(r.text(self.text))


class UpdateFields(Strict):
    """Set canonical fields of the record."""

    fields: dict[str, Any]

    def render(self, r: Renderer) -> actions.UpdateFields:
        """The values for one firing."""
        return actions.UpdateFields({k: r.value(v) for k, v in self.fields.items()})


class MoveStage(Strict):
    """Move the record to a canonical stage."""

    stage: str

    def render(self, r: Renderer) -> actions.MoveStage:
        """The move for one firing."""
        return actions.MoveStage(self.stage)


class SendEmail(Strict):
    """Send a template e-mail (journaled; a rule can wait for it with ``email_sent``)."""

    template: str = Field(description="template name under the tenant's templates folder")
    to: str = Field(
        default="client",
        description="'client' (the record's contact), 'responsible', or a field with an address",
    )
    region: str | None = Field(default=None, description="field holding the client's region")

    def render(self, r: Renderer) -> actions.SendEmail:
        """The e-mail for one firing (rendered later, by the mailer)."""
        region = r.field(self.region) if self.region else None
        return actions.SendEmail(self.template, self.to, region)


class Reassign(Strict):
    """Give the record to someone else: a role's first member at work, else the fallback."""

    to: str = Field(description="a role or a user alias")
    fallback: str | None = Field(default=None, description="role or user when nobody is at work")

    def render(self, r: Renderer) -> actions.Reassign:
        """The new responsible for one firing."""
        return actions.Reassign(r.person(self.to, self.fallback), self.to)


class Notify(Strict):
    """Write to a messenger channel of the tenant (apprise: Telegram, WhatsApp, a team chat)."""

    channel: str = Field(description="a channel of the tenant's `channels:`")
    text: str = Field(description="the message (a template)")
    title: str = ""
    to: str | None = Field(
        default=None,
        description="a field holding the recipient (a phone, a chat id), for channels whose "
        "URL has {to}",
    )
    region: str | None = Field(
        default=None,
        description="a field with the client's region: the message ends with the tenant's "
        "signature for it (the e-mail signatures), as a template e-mail does",
    )

    def render(self, r: Renderer) -> actions.Notify:
        """The message for one firing."""
        to = r.field(self.to) if self.to else None
        region = _text(r.field(self.region)) if self.region else None
        text, title = r.text(self.text), r.text(self.title)
        return actions.Notify(self.channel, text, title, _text(to), bool(self.region), region)


class AppendRow(Strict):
    """Add a line to a table of the tenant (a CSV or XLSX file, a Google Sheet)."""

    table: str = Field(description="a table of the tenant's `tables:`")
    row: dict[str, str] = Field(min_length=1, description="column -> text (templates)")

    def render(self, r: Renderer) -> actions.AppendRow:
        """The row for one firing."""
        return actions.AppendRow(self.table, {k: r.text(v) for k, v in self.row.items()})


def _text(value: Any) -> str | None:
    if value in (None, "") or isinstance(value, list | dict):
        return None
    return str(value)


Body = (
    CreateTask | AddComment | UpdateFields | MoveStage | SendEmail | Reassign | Notify | AppendRow
)


class ActionSpec(Strict):
    """One item of ``then``: exactly one of the action keys."""

    create_task: CreateTask | None = None
    add_comment: AddComment | None = None
    update_fields: UpdateFields | None = None
    move_stage: MoveStage | None = None
    send_email: SendEmail | None = None
    reassign: Reassign | None = None
    notify: Notify | None = None
    append_row: AppendRow | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_action(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key not in ACTION_NAMES:
                    hint = yamlfile.suggest(str(key), ACTION_NAMES)
                    raise ValueError(
                        f"unknown action {key!r}{hint}; one of {', '.join(ACTION_NAMES)}"
                    )
            if len(data) != 1:
                raise ValueError(f"one action per item, got {len(data)}: {', '.join(data)}")
            ((name, body),) = data.items()
            if body is None:
                raise ValueError(f"`{name}` is empty: give its keys (docs/configuration.md)")
        return data

    @property
    def name(self) -> str:
        """The action's name (``create_task``...)."""
        return next(n for n in ACTION_NAMES if getattr(self, n) is not None)

    @property
    def body(
        self,
    ) -> (
        CreateTask
        | AddComment
        | UpdateFields
        | MoveStage
        | SendEmail
        | Reassign
        | Notify
        | AppendRow
    ):
        """The action's parameters."""
        return getattr(self, self.name)
