"""The bridge's configuration: one file lists tenants, each with its CRM, mapping and packs.

Loaded once per process (``load``); every error names file:line, the key and the fix.
Secrets are never in YAML: a tenant names the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator, model_validator

from bridge import crms, email, mappings, templating, yamlfile
from bridge.actions import CreateTask
from bridge.calendar import BusinessCalendar
from bridge.deadlines import DeadlineKind, parse_deadline
from bridge.email import EmailConfig
from bridge.errors import ConfigError
from bridge.models import STANDARD_FIELDS
from bridge.regulations.pack import Known, Pack, check, load_pack
from bridge.yamlfile import Strict

DEFAULT_CONFIG = Path("config/bridge.yaml")
TASK = CreateTask.kind
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


def _check_hours(value: dict[str, str]) -> dict[str, str]:
    parse_hours(value)  # raises ValueError naming the bad day or span
    return value


WorkingHours = Annotated[dict[str, str], AfterValidator(_check_hours)]
"""``{"mon-fri": "09:00-18:00", "sat": "10:00-14:00"}``, checked on load."""


class StaffConfig(Strict):
    """One person of the staff: their surname (rules look for it in texts), and their working
    hours when they differ from the tenant's."""

    surname: str | None = Field(default=None, description="as they sign comments")
    working_hours: WorkingHours | None = Field(
        default=None, description="own hours (default: the tenant's)"
    )
    days_off: list[date] = Field(default_factory=list)


class ChannelConfig(Strict):
    """A messenger channel for ``notify``: an apprise URL held in the environment (it
    carries the bot's token), e.g. ``tgram://<token>/<chat id>``."""

    url_env: str = Field(description="env var (or secrets file entry) with the apprise URL")


class TableConfig(Strict):
    """A table for ``append_row``: a CSV or XLSX file, or a Google Sheet."""

    columns: list[str] = Field(min_length=1, description="the header, in order")
    file: str | None = Field(default=None, description=".csv or .xlsx, relative to this file")
    sheet: str | None = Field(default=None, description="worksheet (XLSX, Google Sheets)")
    google_sheet: str | None = Field(default=None, description="a spreadsheet's key")
    credentials_env: str | None = Field(
        default=None, description="env var with the Google service account's JSON key"
    )

    @model_validator(mode="after")
    def _one_place(self) -> TableConfig:
        if (self.file is None) == (self.google_sheet is None):
            raise ValueError("a table is either a `file` or a `google_sheet`")
        if self.file and not self.file.endswith((".csv", ".xlsx")):
            raise ValueError(f"file {self.file!r} must end in .csv or .xlsx")
        if self.google_sheet and not self.credentials_env:
            raise ValueError("a google_sheet needs `credentials_env`")
        return self


class TenantConfig(Strict):
    """One company: its CRM, how to reach it, and which regulations apply."""

    crm: str = Field(description="the CRM: a name in the registry (bridge.crms)")
    connection: dict[str, Any] = Field(description="the connector's settings; secrets by env name")
    mapping: str | None = Field(default=None, description="mapping file, relative to this file")
    regulations: list[str] = Field(description="regulation pack files, relative to this file")
    timezone: str = "Europe/Moscow"
    working_hours: WorkingHours = Field(default_factory=lambda: {"mon-fri": "09:00-18:00"})
    days_off: list[date] = Field(default_factory=list, description="extra days off")
    working_days: list[date] = Field(default_factory=list, description="extra working days")
    roles: dict[str, str | list[str]] = Field(
        default_factory=dict, description="role -> user alias(es) or id(s), in order of preference"
    )
    staff: dict[str, StaffConfig] = Field(
        default_factory=dict,
        description="user alias -> surname and own working hours (who is at work when)",
    )
    constants: dict[str, Any] = Field(
        default_factory=dict, description="values the packs refer to (override their defaults)"
    )
    channels: dict[str, ChannelConfig] = Field(
        default_factory=dict, description="messenger channels for `notify`, by name"
    )
    tables: dict[str, TableConfig] = Field(
        default_factory=dict, description="tables for `append_row`, by name"
    )
    email: EmailConfig | None = Field(default=None, description="template e-mail; none: no e-mail")
    tasks_in: str | None = Field(
        default=None,
        description="another tenant whose CRM creates this tenant's tasks, where its own CRM "
        "has none (orders kept in an accounting system, tasks in the company's CRM)",
    )
    retry_intervals: list[int] = Field(
        default_factory=lambda: [10, 60, 300, 900, 3600],
        description="seconds an event waits (parked, while the tenant's other records go on) "
        "after a transient CRM error, one per attempt; after the last it is a dead letter",
    )
    reconcile_every: str | None = Field(
        default="15 minutes",
        description="how often to ask the CRM what changed, to catch webhooks that never came "
        "(a plain duration; none: never)",
    )

    @field_validator("reconcile_every")
    @classmethod
    def _plain_duration(cls, value: str | None) -> str | None:
        if value is not None:
            deadline = parse_deadline(value)
            if deadline.kind is not DeadlineKind.CALENDAR:
                raise ValueError(
                    f"reconcile_every must be a plain duration such as '15 minutes', not {value!r}"
                )
        return value

    @field_validator("crm")
    @classmethod
    def _known_crm(cls, value: str) -> str:
        if value not in crms.names():
            hint = yamlfile.suggest(value, crms.names())
            raise ValueError(f"unknown CRM {value!r}{hint}; one of {', '.join(crms.names())}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(  # noqa: B904 - pydantic shows only this message
                f"unknown time zone {value!r}; use an IANA name such as Europe/Moscow"
            )
        return value


HASH_METHODS = ("scrypt:", "pbkdf2:")


class AdminUser(Strict):
    """One person who may open the admin pages."""

    password_hash: str = Field(description="a werkzeug hash: `bridge admin-password` prints one")
    tenants: list[str] = Field(
        default_factory=list, description="the tenants this person sees; empty: every tenant"
    )

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: str) -> str:
        if not value.startswith(HASH_METHODS):
            raise ValueError(
                "password_hash must be a hash such as scrypt:32768:8:1$...; "
                "make one with `bridge admin-password`, never write the password itself"
            )
        return value


class AdminConfig(Strict):
    """The admin pages (``/admin``): who may log in, and how the login is guarded."""

    secret_key_env: str = Field(
        description="env var holding the key that signs session cookies (secret; the same "
        "in every web process)"
    )
    users: dict[str, AdminUser] = Field(description="login -> password hash and tenants")
    max_failures: int = Field(default=5, ge=1, description="failed logins before a lock-out")
    lockout_minutes: int = Field(default=15, ge=1, description="how long a lock-out lasts")
    session_hours: int = Field(default=8, ge=1, description="a login lasts this long")
    secure_cookies: bool = Field(
        default=True, description="send the session cookie over HTTPS only (false: plain HTTP)"
    )


class BridgeConfig(Strict):
    """The top of ``bridge.yaml``."""

    version: Literal[1] = 1
    tenants: dict[str, TenantConfig]
    admin: AdminConfig | None = Field(default=None, description="the admin pages; none: off")

    @model_validator(mode="after")
    def _admin_tenants(self) -> BridgeConfig:
        for login, user in (self.admin.users if self.admin else {}).items():
            for name in user.tenants:
                if name not in self.tenants:
                    raise ValueError(
                        f"admin.users.{login}.tenants: unknown tenant {name!r}"
                        f"{yamlfile.suggest(name, list(self.tenants))}"
                    )
        return self


def parse_hours(spec: dict[str, str]) -> dict[int, tuple[time, time]]:
    """``{"mon-fri": "09:00-18:00", "sat": "10:00-14:00"}`` -> weekday -> (open, close)."""
    out: dict[int, tuple[time, time]] = {}
    for days, span in spec.items():
        match = _SPAN.match(str(span).strip())
        if not match:
            raise ValueError(f"hours {span!r} must look like 09:00-18:00")
        h1, m1, h2, m2 = map(int, match.groups())
        for day in _days(days):
            out[day] = (time(h1, m1), time(h2, m2))
    return out


def _days(spec: str) -> list[int]:
    first, _, last = spec.strip().lower().partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(
            f"days {spec!r} must be a day or a range such as mon-fri ({', '.join(DAYS)})"
        )
    a, b = DAYS.index(first), DAYS.index(last or first)
    return list(range(a, b + 1))


@dataclass
class Tenant:
    """A tenant ready to run: its settings, mapping, rules and calendar."""

    name: str
    config: TenantConfig
    mapping: mappings.Mapping
    packs: list[Pack]
    calendar: BusinessCalendar
    base: Path = Path(".")

    @property
    def rules(self) -> list:
        """Every rule of every pack, in order."""
        return [rule for pack in self.packs for rule in pack.rules]

    def people(self) -> dict[str, tuple[str, ...]]:
        """User aliases and roles -> candidate CRM user ids, in order of preference."""
        people = {alias: (uid,) for alias, uid in self.mapping.users.items()}
        for role, who in self.config.roles.items():
            names = [who] if isinstance(who, str) else who
            people[role] = tuple(self.mapping.user(name) for name in names)
        return people

    def schedules(self) -> dict[str, BusinessCalendar]:
        """CRM user id -> that person's calendar (only for staff with their own hours)."""
        return {self.mapping.user(alias): cal for alias, cal in self._calendars.items()}

    def surnames(self) -> dict[str, str]:
        """CRM user id -> surname, for the staff whose surname the tenant lists."""
        staff = self.config.staff.items()
        return {self.mapping.user(alias): s.surname for alias, s in staff if s.surname}

    def constants(self) -> dict[str, Any]:
        """The packs' constants with the tenant's values over their defaults."""
        merged: dict[str, Any] = {}
        for pack in self.packs:
            merged.update(pack.constants)
        return {**merged, **self.config.constants}

    def __post_init__(self) -> None:
        tz = self.config.timezone
        self._calendars = {
            alias: BusinessCalendar(
                tz,
                parse_hours(s.working_hours or self.config.working_hours),
                extra_days_off=[*self.config.days_off, *s.days_off],
            )
            for alias, s in self.config.staff.items()
            if s.working_hours or s.days_off
        }

    def secret(self, key: str) -> str:
        """The secret a connection setting names (``<key>_env``), from env or the secrets file."""
        return read_secret(self.config.connection[f"{key}_env"])


@dataclass
class Settings:
    """Everything loaded from the config file."""

    path: Path
    tenants: dict[str, Tenant]
    admin: AdminConfig | None = None


def load(path: str | Path | None = None) -> Settings:
    """Load and check the whole configuration (tenants, mappings, packs).

    Raises:
        ConfigError: every problem found, each with file:line.
    """
    path = Path(path or os.environ.get("BRIDGE_CONFIG") or DEFAULT_CONFIG)
    doc = yamlfile.load(path)
    top = yamlfile.validate(BridgeConfig, doc)
    problems: list[str] = []
    tenants = {}
    for name, cfg in top.tenants.items():
        try:
            tenants[name] = _tenant(name, cfg, path.parent, doc)
        except ConfigError as exc:
            problems.extend(exc.problems)
    problems.extend(_pairing_problems(top, doc))
    if problems:
        raise ConfigError(problems)
    return Settings(path=path, tenants=tenants, admin=top.admin)


def _pairing_problems(top: BridgeConfig, doc: yamlfile.YamlDoc) -> list[str]:
    """``tasks_in`` names another tenant whose CRM can create tasks."""
    problems = []
    for name, cfg in top.tenants.items():
        if cfg.tasks_in is None:
            continue
        other = top.tenants.get(cfg.tasks_in) if cfg.tasks_in != name else None
        where = f"{doc.where(('tenants', name, 'tasks_in'))}: tenants.{name}.tasks_in"
        if other is None:
            hint = yamlfile.suggest(cfg.tasks_in, [t for t in top.tenants if t != name])
            problems.append(f"{where}: no other tenant {cfg.tasks_in!r}{hint}")
        elif not _makes_tasks(other):
            title = crms.get(other.crm).title
            problems.append(f"{where}: {cfg.tasks_in} is on {title}, which creates no tasks")
    return problems


def _makes_tasks(cfg: TenantConfig) -> bool:
    return any(TASK in kind.actions for kind in crms.get(cfg.crm).record_kinds)


def _tenant(name: str, cfg: TenantConfig, base: Path, doc: yamlfile.YamlDoc) -> Tenant:
    crm = crms.get(cfg.crm)
    problems = crm.check_settings(doc, ("tenants", name, "connection"))
    mapping_file = base / cfg.mapping if cfg.mapping else None
    mapping = mappings.load(mapping_file, crm.mapping_path())
    problems.extend(_kind_problems(crm, mapping, mapping_file))
    packs = []
    known = _known(crm, mapping, cfg, base)
    for file in cfg.regulations:
        try:
            pack, pack_doc = load_pack(base / file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(check(pack, pack_doc, known))
        packs.append(pack)
    if cfg.email is not None:
        names = _email_names(crm, mapping, packs)
        problems.extend(email.check_templates(base / cfg.email.templates, names))
    if cfg.email and cfg.email.signatures and not (base / cfg.email.signatures).is_file():
        where = doc.where(("tenants", name, "email", "signatures"))
        problems.append(f"{where}: tenants.{name}.email.signatures: no file {cfg.email.signatures}")
    if problems:
        raise ConfigError(problems)
    return Tenant(name, cfg, mapping, packs, calendar(cfg), base)


def _email_names(
    crm: type[crms.CRM], mapping: mappings.Mapping, packs: list[Pack]
) -> Callable[[str], templating.Names]:
    """What each e-mail template may name: the custom fields of every record kind the tenant's
    rules send it about. A template the tenant never sends (a folder shared by tenants) is
    checked for its syntax and variables, not for fields of another tenant's mapping."""
    custom = {k: mapping.canonical_fields(k) - STANDARD_FIELDS for k in crm.kinds()}
    sent: dict[str, list[str]] = {}
    for rule in (r for pack in packs for r in pack.rules):
        for spec in (s for step in rule.steps() for s in step if s.send_email is not None):
            kinds = [k for k in rule.when.kind or custom if k in custom]
            sent.setdefault(spec.send_email.template, []).extend(kinds)  # type: ignore[union-attr]

    def names(template: str) -> templating.Names:
        kinds = list(dict.fromkeys(sent.get(template, [])))
        fields = frozenset(set.intersection(*(custom[k] for k in kinds))) if kinds else None
        return templating.Names(email.EMAIL_VARIABLES, fields, ", ".join(kinds))

    return names


def _kind_problems(crm: type[crms.CRM], mapping: mappings.Mapping, path: Path | None) -> list[str]:
    """Sections of a mapping that name a record kind the CRM does not offer."""
    offered = crm.kinds()
    wrong = [k for k in mapping.kinds if k not in offered]
    if not wrong:
        return []
    doc = yamlfile.load(path) if path else None
    return [
        f"{doc.where((k,)) if doc else crm.mapping_path()}: {k}: {crm.title} offers no record "
        f"kind {k!r}{yamlfile.suggest(k, offered)}; its kinds: {', '.join(offered)}"
        for k in wrong
    ]


def _known(crm: type[crms.CRM], mapping: mappings.Mapping, cfg: TenantConfig, base: Path) -> Known:
    kinds = list(crm.kinds())
    # a paired tenant's CRM creates the tasks (checked by _pairing_problems)
    extra = frozenset({TASK}) if cfg.tasks_in else frozenset()
    templates = None
    if cfg.email is not None:
        folder = base / cfg.email.templates
        templates = {p.stem for p in folder.glob("*.txt")} if folder.is_dir() else set()
    return Known(
        crm=crm.title,
        actions={k: crm.kinds()[k].actions | extra for k in kinds},
        fields={k: mapping.canonical_fields(k) for k in kinds},
        stages={k: mapping.canonical_stages(k) for k in kinds},
        people=set(mapping.users) | set(cfg.roles),
        templates=templates,
        constants=cfg.constants,
        labels={k: set(mapping.kind(k).labels) for k in kinds},
        channels=set(cfg.channels),
        tables={name: t.columns for name, t in cfg.tables.items()},
    )


def pack_for(tenant: Tenant, path: str | Path) -> Pack:
    """A pack file checked against a tenant's mapping, roles and CRM (a backtest's pack).

    Raises:
        ConfigError: shape errors and unknown names, each with file:line.
    """
    crm = crms.get(tenant.config.crm)
    pack, doc = load_pack(path)
    problems = check(pack, doc, _known(crm, tenant.mapping, tenant.config, tenant.base))
    if problems:
        raise ConfigError(problems)
    return pack


def calendar(cfg: TenantConfig) -> BusinessCalendar:
    """The tenant's business calendar."""
    return BusinessCalendar(
        timezone=cfg.timezone,
        hours=parse_hours(cfg.working_hours),
        extra_days_off=cfg.days_off,
        extra_working_days=cfg.working_days,
    )


def read_secret(name: str) -> str:
    """A secret by name: the environment first, then ``BRIDGE_SECRETS_FILE`` (KEY=value lines).

    Raises:
        ConfigError: when neither holds it (the message names the variable, never a value).
    """
    value = _find_secret(name)
    if value is None:
        raise ConfigError(
            [f"secret {name} is not set: export {name}=... or put it in BRIDGE_SECRETS_FILE"]
        )
    return value


def _find_secret(name: str) -> str | None:
    if os.environ.get(name):
        return os.environ[name]
    file = os.environ.get("BRIDGE_SECRETS_FILE")
    if file and Path(file).is_file():
        for line in Path(file).read_text(encoding="utf-8").splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return None


@dataclass(frozen=True)
class SecretSetting:
    """A setting of ``bridge.yaml`` that names the variable holding a secret.

    Attributes:
        loc: its key path (``tenants.remarka.connection.webhook_url_env``).
        variable: the environment variable (or secrets file entry) it names.
        owner: who needs it: ``tenant remarka``, ``the admin pages``.
        optional: why the bridge can do without it, when it can (else empty).
        fails: what fails without it, when not the whole owner (a channel's messages).
    """

    loc: tuple[str, ...]
    variable: str
    owner: str
    optional: str = ""
    fails: str = ""


def secret_settings(settings: Settings) -> list[SecretSetting]:
    """Every secret the configuration names: connections, channels, tables, SMTP, admin."""
    out = []
    for name, tenant in settings.tenants.items():
        cfg, at, owner = tenant.config, ("tenants", name), f"tenant {name}"
        model = crms.get(cfg.crm).settings
        for key, value in cfg.connection.items():
            if key.endswith("_env") and value:
                optional = key in model.optional_secrets
                why = (model.model_fields[key].description or "optional") if optional else ""
                out.append(SecretSetting((*at, "connection", key), str(value), owner, why))
        out += [
            SecretSetting(
                (*at, "channels", ch, "url_env"),
                c.url_env,
                owner,
                fails=f"the messages (notify) of {owner} to channel {ch} fail without it "
                "(journaled with this reason; `bridge replay` sends them once it is set)",
            )
            for ch, c in cfg.channels.items()
        ]
        out += [
            SecretSetting((*at, "tables", t, "credentials_env"), table.credentials_env, owner)
            for t, table in cfg.tables.items()
            if table.credentials_env
        ]
        smtp = cfg.email.smtp if cfg.email and cfg.email.transport == "smtp" else {}
        if smtp.get("password_env"):
            loc = (*at, "email", "smtp", "password_env")
            out.append(SecretSetting(loc, str(smtp["password_env"]), owner))
    if settings.admin:
        loc = ("admin", "secret_key_env")
        out.append(SecretSetting(loc, settings.admin.secret_key_env, "the admin pages"))
    return out


def missing_secrets(settings: Settings) -> tuple[list[str], list[str]]:
    """The secrets the configuration names that neither the environment nor
    ``BRIDGE_SECRETS_FILE`` holds, as ``file:line: key: ...`` lines naming the variable to set
    (never a value): problems, and notes for those the bridge can do without."""
    doc = yamlfile.load(settings.path)
    problems, notes = [], []
    file = os.environ.get("BRIDGE_SECRETS_FILE")
    if file and not Path(file).is_file():
        problems.append(
            f"BRIDGE_SECRETS_FILE names {file}, which does not exist: create it (NAME=value "
            "lines) or unset BRIDGE_SECRETS_FILE"
        )
    for s in secret_settings(settings):
        if _find_secret(s.variable) is not None:
            continue
        where = f"{doc.where(s.loc)}: {yamlfile.dotted(s.loc)}"
        if s.optional:
            notes.append(f"{where}: note: {s.variable} is not set ({s.optional})")
        else:
            fails = s.fails or f"{s.owner} cannot run without it"
            problems.append(
                f"{where}: the secret {s.variable} is not set: {fails}; "
                f"export {s.variable}=... or add the line {s.variable}=... to BRIDGE_SECRETS_FILE"
            )
    return problems, notes
