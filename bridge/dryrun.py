"""``bridge dry-run``: the plan for one event, without acting.

The event is described in a YAML or JSON file (docs/configuration.md, "Dry runs") or by
options. With ``record:`` no CRM is read: the record is written in the tenant's words
(canonical names, user aliases, or the CRM's own ids, translated through the mapping). Without
it the record is read from the CRM by kind and id and compared with the journal's snapshot,
exactly as the pipeline would. Nothing is written anywhere; e-mails are rendered, not sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from pydantic import Field, PrivateAttr, field_validator

from bridge import actions, clock, config, crms, email, services, yamlfile
from bridge.crms.connector import QUICK_TIMEOUT, Connector
from bridge.errors import (
    AuthError,
    BridgeError,
    ConfigError,
    NeedsAttention,
    NoAnswer,
    PermanentError,
    RedisUnavailable,
    TransientError,
)
from bridge.journal import Journal
from bridge.masking import redact
from bridge.models import EVENT_TYPES, Event, Plan, Record, RecordRef
from bridge.pipeline import plan_for, previous_of, stage_since, stay_of
from bridge.regulations.conditions import ActivityMatch
from bridge.regulations.engine import Facts
from bridge.vocabulary import Vocabulary, WordError, activity
from bridge.yamlfile import Strict

CLIENT = "client@example.invalid"
"""The address a dry run renders a client's e-mail to when no CRM is read."""


class DryRun(Strict):
    """An event to plan (a dry-run file)."""

    tenant: str | None = Field(default=None, description="default: the config's only tenant")
    config: str | None = Field(default=None, description="the config file (default as usual)")
    type: str = Field(default="record.updated", description="the event type")
    kind: str = Field(default="deal", description="the record's kind")
    id: str = Field(default="1", description="the record's id (read from the CRM by it)")
    at: datetime | None = Field(default=None, description="when it happens (default: now)")
    record: dict[str, Any] | None = Field(
        default=None, description="the record, in canonical words; leave out to read the CRM"
    )
    previous: dict[str, Any] | None = Field(
        default=None, description="the record as the bridge saw it last (with `record:`)"
    )
    activity: ActivityMatch | None = Field(
        default=None, description="activity.created: the activity's type, direction, completion"
    )

    _doc: yamlfile.YamlDoc | None = PrivateAttr(default=None)
    _id = field_validator("id", mode="before")(lambda v: str(v))

    def where(self, loc: tuple[str, ...]) -> str:
        """``file:line`` of a key of the description (``<options>`` when given by options)."""
        return self._doc.where(loc) if self._doc else "<options>"

    @field_validator("type")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            hint = yamlfile.suggest(value, EVENT_TYPES)
            raise ValueError(f"unknown event {value!r}{hint}; one of {', '.join(EVENT_TYPES)}")
        return value


def load(path: str | None, overrides: dict[str, Any]) -> DryRun:
    """A dry-run description from a file (YAML or JSON) and/or options.

    Raises:
        ConfigError: the file is not valid (file:line of each problem).
    """
    doc = yamlfile.load(path) if path else yamlfile.YamlDoc(Path("<options>"), {})
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(doc.data, dict) and given:
        doc = yamlfile.YamlDoc(doc.path, {**doc.data, **given}, doc.lines)
    run: DryRun = yamlfile.validate(DryRun, doc)
    run._doc = doc
    return run


def dry_run(run: DryRun, config_path: str | None = None) -> str:
    """The readable plan for an event: verdicts, actions, timers, rendered e-mails.

    Raises:
        ConfigError: an unknown tenant, or a record in words the tenant does not know.
        bridge.errors.BridgeError: the CRM could not be read.
    """
    settings = config.load(run.config or config_path)
    tenant = _tenant(settings, run.tenant)
    if run.at is not None and run.at.tzinfo is None:
        raise ConfigError([f"{run.where(('at',))}: at: needs its UTC offset, e.g. +03:00"])
    data = run.model_dump(exclude_none=True, exclude={"tenant", "config"})
    try:
        found, record, conn = _plan(tenant, data, None, None)
    except WordError as exc:
        loc = (exc.part, *exc.key)
        raise ConfigError([f"{run.where(loc)}: {yamlfile.dotted(loc)}: {exc}"]) from None
    return describe(found, _emails(tenant, record, found, conn))


def plan(
    tenant: config.Tenant,
    data: dict[str, Any],
    connector: Connector | None = None,
    journal: Journal | None = None,
) -> Plan:
    """The plan for an event description (the admin pages' "try a rule" too).

    ``data`` holds what a dry-run file does (``type``, ``kind``, ``id``, ``at``, ``record``,
    ``previous``, ``activity``), the records in the tenant's words.

    Args:
        connector: reads the record when ``data`` gives none (default: a new one).
        journal: holds the record's last snapshot (default: ``BRIDGE_JOURNAL_URL``'s).

    Raises:
        WordError: a stage, user or field the tenant's mapping does not know.
    """
    return _plan(tenant, data, connector, journal)[0]


def _plan(
    tenant: config.Tenant,
    data: dict[str, Any],
    connector: Connector | None,
    journal: Journal | None,
) -> tuple[Plan, Record, Connector | None]:
    at = data.get("at") or clock.utcnow()
    at = datetime.fromisoformat(at) if isinstance(at, str) else at
    kind, record_id = data.get("kind", "deal"), str(data.get("id", "1"))
    ref = RecordRef(kind, record_id)
    event = Event(tenant.name, tenant.config.crm, data.get("type", "record.updated"), ref, at)
    facts = Facts(activity=activity(data.get("activity")))
    if data.get("record") is not None:
        crm = crms.get(tenant.config.crm)
        words = Vocabulary(crm.name, tenant.mapping, tuple(crm.kinds()))
        base = {"kind": kind, "id": record_id}
        record = _read(words, {**base, **data["record"]}, "record")
        before = data.get("previous")
        previous = _read(words, {**base, **before}, "previous") if before else None
        return plan_for(tenant, event, record, previous, "1", facts), record, None
    conn = connector or _connector(tenant)
    record = conn.fetch(event.ref) if connector else _fetch(conn, event.ref)
    journal = journal or Journal()
    snap = journal.snapshot(tenant.name, record.kind, record.id)
    previous = previous_of(snap, record)
    facts = replace(facts, stage_since=stage_since(snap, record, event.received_at))
    return plan_for(tenant, event, record, previous, stay_of(snap, record), facts), record, conn


def _connector(tenant: config.Tenant) -> Connector:
    """The tenant's connector for a person waiting: short timeouts, no waiting out limits,
    and the bridge's Redis when one answers (amoCRM keeps its tokens there; a Redis started
    for the dry run would hold none, and a refresh there would strand the workers')."""
    try:
        shared = services.connect(services.redis_url(start=False), timeout=QUICK_TIMEOUT)
    except RuntimeError:
        shared = None
    cls = crms.get(tenant.config.crm).connector_class()
    return cls(tenant, shared=shared, interactive=True)


def _fetch(conn: Connector, ref: RecordRef) -> Record:
    """The record, or one sentence saying which CRM failed how, and what to check.

    Raises:
        BridgeError: the CRM gave no answer, refused the credentials, failed, or has no
            such record; or the bridge's Redis did not answer.
    """
    crm, options = conn.crm.title, conn.options
    try:
        return conn.fetch(ref)
    except NoAnswer as exc:
        why = (
            f"{crm} did not answer when asked for {ref} ({redact(exc)}): check "
            f"{options.address()}, that {crm} is up and that this machine reaches it"
        )
    except (redis.RedisError, RedisUnavailable) as exc:
        at = conn.shared.get_connection_kwargs() if conn.shared else {}
        why = (
            f"the bridge's Redis at {at.get('host')}:{at.get('port')} did not answer "
            f"({redact(exc)}): {crm}'s tokens live there; start it, or set REDIS_URL "
            "to the Redis the bridge's workers use"
        )
    except (AuthError, NeedsAttention) as exc:
        why = (
            f"{crm} refused the bridge's credentials ({redact(exc)}): check {options.credentials()}"
        )
    except TransientError as exc:
        why = f"{crm} could not answer now ({redact(exc)}): it is busy or failing, try again later"
    except PermanentError as exc:
        why = f"{crm} did not give {ref} ({redact(exc)}): {options.missing()}"
    raise BridgeError(f"{why}; or describe the record under `record:` to dry-run without {crm}")


def _tenant(settings: config.Settings, name: str | None) -> config.Tenant:
    names = list(settings.tenants)
    if name is None and len(names) == 1:
        return settings.tenants[names[0]]
    if name in settings.tenants:
        return settings.tenants[name]
    hint = yamlfile.suggest(name or "", names)
    what = f"unknown tenant {name!r}{hint}" if name else "say which tenant (`tenant:` or --tenant)"
    raise ConfigError([f"{settings.path}: {what}; the config's tenants: {', '.join(names)}"])


def _read(words: Vocabulary, data: dict[str, Any], part: str) -> Record:
    try:
        return words.record(data)
    except WordError as exc:
        exc.part = part  # which of the description's records it was
        raise


def _emails(tenant: config.Tenant, record: Record, plan: Plan, conn: Any) -> list[str]:
    """Each planned e-mail, rendered as it would leave (recipients masked)."""
    out = []
    for action in plan.actions:
        p = action.params
        if not isinstance(p, actions.SendEmail):
            continue
        try:
            out.append(_render(tenant, record, p, conn))
        except (PermanentError, ConfigError) as exc:
            out.append(f"e-mail «{p.template}» cannot be rendered: {exc}")
    return out


def _render(tenant: config.Tenant, record: Record, p: actions.SendEmail, conn: Any) -> str:
    client = None
    if conn is None:
        to, manager = CLIENT, ("[manager's name]", "[manager's e-mail]")
        client = "[client's name]"
    else:
        client = conn.contact_name(record)
        to = email.recipient(conn, record, p.to)
        if not to:
            why = email.WHERE_TO[p.to]
            return f"e-mail «{p.template}» would fail: no address for {p.to!r}: {why}"
        who = record.responsible
        manager = (conn.user_name(who), conn.user_email(who)) if who else (None, None)
    mailer = email.mailer_for(tenant)
    message = email.compose_action(mailer, record, p, to, *manager, client_name=client)
    return email.as_text(message, masked=conn is not None)


def describe(plan: Plan, emails: list[str] | None = None) -> str:
    """A plan as lines: every rule's verdict, then the actions and timers."""
    lines = [f"rule {d.rule}: {d.verdict} ({d.detail})" for d in plan.decisions]
    lines += [f"would {a.kind}: {a.describe()}" for a in plan.actions]
    lines += [f"would set timer {t.rule} step {t.step} at {t.due.isoformat()}" for t in plan.timers]
    if not plan.actions and not plan.timers:
        lines.append("nothing to do")
    lines += emails or []
    return "\n".join(lines)
