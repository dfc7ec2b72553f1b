"""Template e-mail: Jinja2 in a sandbox, a signature per region, SMTP or an outbox folder.

Regulations such as "a client who does not answer gets a template e-mail" or "after a meeting,
a thank-you e-mail summing up the agreements" send mail through :class:`Mailer`.

Template files live in one folder (``config/templates/email/``). ``<name>.txt`` holds the
subject and the plain-text body, headed like an e-mail::

    Subject: Коммерческое предложение: {{ record.title }}

    Здравствуйте, {{ client_name }}!
    ...

* line 1 is ``Subject:`` followed by a template for the subject; it is rendered on one line
  (newlines and runs of spaces collapse to one space);
* line 2 is blank;
* the rest is the body template.

An optional sibling ``<name>.html`` holds an HTML alternative of the body only (no Subject
line). HTML templates are autoescaped; ``.txt`` templates never are.

Rendering uses the bridge's one template environment (:mod:`bridge.templating`, the same as
rule texts): a template can neither reach Python internals (``{{ ''.__class__ }}`` raises
:class:`jinja2.sandbox.SecurityError`), nor modify the context, nor produce more than
:data:`bridge.templating.MAX_OUTPUT` characters. :class:`jinja2.StrictUndefined` makes a missing
variable raise :class:`jinja2.UndefinedError` naming it, never render as a blank. One extra filter:
``money`` (``150000`` -> ``150 000 ₽``).

The context is the caller's dict plus ``signature``: the text for the recipient's region
from ``signatures.yaml`` (see :class:`Signatures`). The recipient's address is the context key
``to`` (required; templates may use it too).

:meth:`Mailer.send` sets the Message-ID to ``<idempotency key@domain>``, so a retried send
carries the same id: :class:`OutboxTransport` writes nothing the second time, and a mail
server or client that keys on Message-ID sees a duplicate. Addresses are masked with
:func:`bridge.masking.redact` in everything logged and in error messages.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import smtplib
import ssl
import types
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from jinja2 import BaseLoader, Environment, TemplateNotFound, select_autoescape
from jinja2.exceptions import FilterArgumentError
from jinja2.loaders import split_template_path
from pydantic import Field

from bridge import actions, templating, yamlfile
from bridge.errors import BridgeError, ConfigError, PermanentError, TransientError
from bridge.masking import redact
from bridge.yamlfile import Strict

if TYPE_CHECKING:
    from bridge.config import Tenant
    from bridge.crms.connector import Connector
    from bridge.models import Action, Record

log = logging.getLogger(__name__)

_SUBJECT = "subject:"
# A Message-ID left part we take as is: a dot-atom that is also a safe file name everywhere
_SAFE_KEY = re.compile(r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*")
_UNSAFE_KEY_CHAR = re.compile(r"[^A-Za-z0-9_+=-]")
_MAX_KEY = 64
_SAFE_FILE = re.compile(r"[A-Za-z0-9_+=-][A-Za-z0-9_+=.@-]*")
_SMTP_KEYS = ("host", "port", "username", "password_env", "starttls", "timeout")


# ---------------------------------------------------------------------------- templates


def split_template(text: str, where: str | Path = "<string>") -> tuple[str, str]:
    """Split a ``.txt`` template file into its subject template and its body template.

    The body keeps two newlines in place of the header, so that the line numbers Jinja puts
    in its errors are the file's; :meth:`Mailer.render` strips leading newlines afterwards.

    Args:
        text: the whole file.
        where: the file, for error messages.

    Returns:
        ``(subject template, body template)``.

    Raises:
        ConfigError: line 1 is not ``Subject: ...`` or line 2 is not blank.
    """
    lines = text.replace("\r\n", "\n").split("\n", 2)
    if not lines[0].lower().startswith(_SUBJECT):
        raise ConfigError([f"{where}:1: the first line must be 'Subject: <subject>'"])
    if len(lines) > 1 and lines[1].strip():
        raise ConfigError([f"{where}:2: the Subject line must be followed by a blank line"])
    body = lines[2] if len(lines) > 2 else ""
    return lines[0][len(_SUBJECT) :].strip(), "\n\n" + body


class _Loader(BaseLoader):
    """Serves ``<name>.txt`` (its body), ``<name>.txt#subject`` and any other file whole."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """Read one part of a template file (see the class docstring)."""
        name, _, part = template.partition("#")
        # split_template_path refuses "..": a template name cannot leave the folder
        path = self.folder.joinpath(*split_template_path(name))
        try:
            text = path.read_text(encoding="utf-8-sig")  # -sig: Windows editors add a BOM
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise TemplateNotFound(template) from exc
        source = text
        if name.endswith(".txt"):
            subject, body = split_template(text, path)
            source = subject if part == "subject" else body
        return source, str(path), lambda: _mtime(path) == mtime


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def money(value: Any, currency: str = "₽") -> str:
    """Format an amount the Russian way: ``150000`` -> ``150 000 ₽``, ``99.5`` -> ``99,50 ₽``.

    The separators are no-break spaces, so a mail client never wraps inside an amount.

    Raises:
        FilterArgumentError: ``value`` is not a number (a template error, like the others).
    """
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise FilterArgumentError(f"money: not a number: {value!r}") from exc
    text = f"{amount:,.2f}".replace(",", "\u00a0").replace(".", ",").removesuffix(",00")
    return f"{text}\u00a0{currency}"


def make_environment(folder: str | Path) -> templating.Sandbox:
    """The Jinja2 environment for one template folder: the bridge's sandbox
    (:func:`bridge.templating.environment`), with HTML-only escaping and the ``money`` filter."""
    return templating.environment(
        loader=_Loader(Path(folder)),
        autoescape=select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        keep_trailing_newline=True,
        filters={"money": money},
    )


# ---------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Signatures:
    """Signature texts by the client's region, with a default for every other region.

    Region names are compared case-insensitively (``Moscow`` finds ``moscow``).
    """

    default: str = ""
    regions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        folded = {k.strip().casefold(): v for k, v in self.regions.items()}
        # read-only: a Mailer shares one Signatures between renders
        object.__setattr__(self, "regions", types.MappingProxyType(folded))

    def for_region(self, region: str | None) -> str:
        """The signature for ``region``; the default when the region is unknown or None."""
        if not region:
            return self.default
        return self.regions.get(region.strip().casefold(), self.default)

    @classmethod
    def load(cls, path: str | Path) -> Signatures:
        """Read ``signatures.yaml``: a mapping of region -> text that must include ``default``.

        Raises:
            ConfigError: the file is unreadable, not a mapping, a value is not text, or
                ``default`` is missing (each problem names file:line).
        """
        doc = yamlfile.load(path)
        if not isinstance(doc.data, dict):
            raise ConfigError([f"{doc.where(())}: expected a mapping of region -> signature"])
        problems = [
            f"{doc.where((key,))}: {key}: the signature must be text"
            for key, value in doc.data.items()
            if not isinstance(key, str) or not isinstance(value, str)
        ]
        if "default" not in doc.data:
            problems.append(f"{doc.where(())}: default: required key is missing")
        if problems:
            raise ConfigError(problems)
        texts = {key: value.rstrip() for key, value in doc.data.items()}
        default = texts.pop("default")
        return cls(default=default, regions=texts)


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class SentMail:
    """What was sent: enough to journal it and to recognise a retry by its Message-ID."""

    message_id: str
    to: str
    subject: str
    transport: str
    at: datetime


def message_id(idempotency_key: str, domain: str) -> str:
    """``<key@domain>``: the Message-ID that makes a retried send recognisable.

    A key that is not a plain dot-atom (``deal:42``, Cyrillic, too long) is cleaned to safe
    characters and suffixed with a hash of the original, so two keys never share an id and
    the id is always a safe file name.

    Raises:
        ValueError: the key is empty.
    """
    if not idempotency_key:
        raise ValueError("the idempotency key is empty")
    local = idempotency_key
    if not _SAFE_KEY.fullmatch(local) or len(local) > _MAX_KEY:
        digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:12]
        local = f"{_UNSAFE_KEY_CHAR.sub('-', idempotency_key)[:48]}.{digest}"
    return f"<{local}@{domain}>"


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    date: datetime,
    message_id: str,
    html: str | None = None,
) -> EmailMessage:
    """Build a UTF-8 message: text/plain, or multipart/alternative when ``html`` is given."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def with_message_id(message: EmailMessage, new_id: str) -> EmailMessage:
    """A copy of ``message`` with another Message-ID (the original is left as it was)."""
    out = copy.deepcopy(message)
    del out["Message-ID"]
    out["Message-ID"] = new_id
    return out


def seven_bit(message: EmailMessage) -> EmailMessage:
    """A copy whose 8bit text parts are re-encoded as base64, for servers without 8BITMIME."""
    out = copy.deepcopy(message)
    for part in out.walk():
        if part.is_multipart() or part.get("Content-Transfer-Encoding", "") != "8bit":
            continue
        part.set_content(part.get_content(), subtype=part.get_content_subtype(), cte="base64")
    return out


# ---------------------------------------------------------------------------- transports


class Transport(Protocol):
    """Delivers a finished message; ``name`` goes into :class:`SentMail`."""

    name: ClassVar[str]

    def deliver(self, message: EmailMessage) -> bool:
        """Deliver the message; False when it was already delivered (recognised by its id).

        Raises:
            TransientError: try again later.
            PermanentError: retrying cannot help.
        """
        ...


@dataclass(frozen=True)
class OutboxTransport:
    """Writes each message to ``<folder>/<message-id>.eml``: no mail leaves the machine.

    Idempotent: a message whose id already has a file is not written again.
    """

    folder: Path
    name: ClassVar[str] = "outbox"

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))

    def path_for(self, message: EmailMessage) -> Path:
        """The file a message goes to.

        Raises:
            PermanentError: the message has no Message-ID usable as a file name.
        """
        mid = str(message.get("Message-ID", "")).strip().removeprefix("<").removesuffix(">")
        if not _SAFE_FILE.fullmatch(mid):
            raise PermanentError(f"outbox: the Message-ID {redact(mid)!r} is not a safe file name")
        return self.folder / f"{mid}.eml"

    def deliver(self, message: EmailMessage) -> bool:
        """Write the message; False (and nothing written) when its file already exists.

        Raises:
            TransientError: the folder cannot be written (disk full, permissions).
        """
        path = self.path_for(message)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if path.exists():
                return False
            # write aside, then link: the .eml appears whole or not at all, and link fails
            # when a concurrent send of the same id got there first
            tmp = self.folder / f".{uuid.uuid4().hex}.tmp"
            tmp.write_bytes(message.as_bytes())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise TransientError(f"outbox {self.folder}: cannot write: {exc}") from exc
        return True


@dataclass(frozen=True)
class SmtpTransport:
    """Sends through an SMTP server (smtplib), optionally with STARTTLS and login."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 10
    name: ClassVar[str] = "smtp"

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> SmtpTransport:
        """Build from config: ``host``, ``port`` (25), ``username``, ``password_env``,
        ``starttls`` (false), ``timeout`` (10 s).

        The password is never in the config: ``password_env`` names the environment variable
        that holds it.

        Args:
            settings: the ``smtp`` section of the config.
            environ: where to read the password; ``os.environ`` by default.

        Raises:
            ConfigError: a ``password`` key, an unknown or missing key, an unset variable.
        """
        env = os.environ if environ is None else environ
        problems = _smtp_problems(settings)
        password = None
        if var := settings.get("password_env"):
            password = env.get(str(var))
            if not password:
                problems.append(f"smtp.password_env: the environment variable {var} is not set")
        try:
            port, timeout = int(settings.get("port", 25)), float(settings.get("timeout", 10))
        except (TypeError, ValueError):
            problems.append("smtp.port, smtp.timeout: must be numbers")
        if problems:
            raise ConfigError(problems)
        return cls(
            host=str(settings["host"]),
            port=port,
            username=settings.get("username"),
            password=password,
            starttls=bool(settings.get("starttls", False)),
            timeout=timeout,
        )

    def deliver(self, message: EmailMessage) -> bool:
        """Send the message; always True (SMTP cannot tell a duplicate).

        Raises:
            TransientError: no connection, a timeout, a 4xx answer.
            PermanentError: a 5xx answer (recipient rejected, login refused), no STARTTLS.
        """
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                self._open_session(smtp)
                refused = _send(smtp, message)
        except (smtplib.SMTPException, OSError) as exc:
            # from None: the original text holds the full addresses; ours has them masked
            raise _smtp_error(exc, f"SMTP {self.host}:{self.port}") from None
        if refused:
            # accepted by the others: a retry would mail them twice, so warn and go on
            log.warning("SMTP %s refused some recipients: %s", self.host, redact(sorted(refused)))
        return True

    def _open_session(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password or "")


def _smtp_problems(settings: Mapping[str, Any]) -> list[str]:
    problems = []
    if "password" in settings:
        problems.append(
            "smtp.password: a password is never written in a config file; put it in an "
            "environment variable and name that variable in password_env"
        )
    for key in settings:
        if key not in _SMTP_KEYS and key != "password":
            problems.append(f"smtp.{key}: unknown key{yamlfile.suggest(str(key), _SMTP_KEYS)}")
    if not settings.get("host"):
        problems.append("smtp.host: required key is missing")
    return problems


def _send(smtp: smtplib.SMTP, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
    # our bodies are 8bit UTF-8; declare it, or re-encode for an old server that lacks it
    if smtp.has_extn("8bitmime"):
        return smtp.send_message(message, mail_options=["BODY=8BITMIME"])
    return smtp.send_message(seven_bit(message))


def _smtp_error(exc: OSError, where: str) -> BridgeError:
    """Classify an smtplib failure: 5xx is permanent, 4xx and the network are transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{redact(addr)}: {code} {redact(_text(reply))}"
            for addr, (code, reply) in exc.recipients.items()
        )
        permanent = bool(codes) and all(code >= 500 for code in codes)
        kind = PermanentError if permanent else TransientError
        return kind(f"{where} refused the recipient: {detail}")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentError if exc.smtp_code >= 500 else TransientError
        return kind(f"{where} answered {exc.smtp_code} {redact(_text(exc.smtp_error))}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{where} closed the connection: {redact(exc)}")
    if isinstance(exc, smtplib.SMTPException | ssl.SSLCertVerificationError):
        # no STARTTLS, no AUTH method in common, a bad certificate: the config must change
        return PermanentError(f"{where}: {type(exc).__name__}: {redact(exc)}")
    return TransientError(f"{where} is unreachable: {type(exc).__name__}: {redact(exc)}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def transport_from_settings(
    settings: Mapping[str, Any] | None, *, outbox: str | Path = "var/outbox"
) -> Transport:
    """The transport a config asks for; the outbox when there is no config (nothing leaves).

    ``{"transport": "smtp", "host": ...}`` -> :class:`SmtpTransport` (see its
    ``from_settings``; a ``folder`` key is ignored); ``{"transport": "outbox", "folder": ...}``
    or None -> the outbox (SMTP keys are ignored).

    Raises:
        ConfigError: an unknown transport or bad SMTP settings.
    """
    settings = settings or {}
    kind = settings.get("transport", "outbox")
    if kind == "smtp":
        # one config section may carry both transports' keys; the outbox's are not typos
        smtp = {k: v for k, v in settings.items() if k not in ("transport", "folder")}
        return SmtpTransport.from_settings(smtp)
    if kind == "outbox":
        return OutboxTransport(Path(settings.get("folder", outbox)))
    raise ConfigError([f"transport: unknown transport {kind!r}; use smtp or outbox"])


# ---------------------------------------------------------------------------- mailer


class EmailConfig(Strict):
    """Where template e-mail goes: an outbox folder (embedded default) or an SMTP server."""

    transport: Literal["outbox", "smtp"] = "outbox"
    templates: str = Field(default="templates/email", description="folder, relative to this file")
    outbox: str = Field(
        default="var/outbox", description="folder for .eml files (outbox transport)"
    )
    sender: str = Field(default="bridge@localhost", description="the From address")
    signatures: str | None = Field(
        default=None,
        description="signatures file by region, relative to this file (default: the templates'"
        " folder's signatures.yaml)",
    )
    smtp: dict[str, Any] = Field(
        default_factory=dict, description="host, port, username, password_env, starttls"
    )


def _now() -> datetime:
    return datetime.now(UTC)


class Mailer:
    """Renders template e-mails and sends them through one transport."""

    def __init__(
        self,
        folder: str | Path,
        *,
        sender: str,
        transport: Transport,
        signatures: Signatures | None = None,
        domain: str | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """Set up a mailer.

        Args:
            folder: the template folder.
            sender: the From header, e.g. ``Ремарка <sales@remarka.example>``.
            transport: where messages go.
            signatures: by default ``<folder>/signatures.yaml`` when present, else none.
            domain: the Message-ID's right part; by default the sender's domain.
            clock: the time source (aware datetimes), for Date and :class:`SentMail`.
        """
        self.folder = Path(folder)
        self.sender = sender
        self.transport = transport
        self.signatures = signatures if signatures is not None else _signatures_in(self.folder)
        self.domain = domain or parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        self.clock = clock
        self._env = make_environment(self.folder)

    def templates(self) -> list[str]:
        """The names of the templates in the folder (without ``.txt``)."""
        return sorted(path.stem for path in self.folder.glob("*.txt"))

    def render(
        self, template: str, context: dict[str, Any], *, region: str | None = None
    ) -> EmailMessage:
        """Render a template into a message to ``context["to"]``.

        Args:
            template: the template's name, with or without ``.txt``.
            context: the template's variables; ``to`` is the recipient's address.
            region: the recipient's region, which picks ``signature``.

        Returns:
            A message with From, To, Subject, Date and a provisional Message-ID (replaced by
            :meth:`send`).

        Raises:
            ConfigError: no such template, or its header is malformed.
            PermanentError: the context has no usable recipient address.
            jinja2.UndefinedError: the template uses a variable the context lacks.
            jinja2.sandbox.SecurityError: the template reaches for Python internals.
        """
        name = template.removesuffix(".txt")
        ctx = {"signature": self.signatures.for_region(region), **context}
        to = _recipient(ctx)
        subject = self._part(f"{name}.txt#subject", ctx)
        text = self._part(f"{name}.txt", ctx).lstrip("\n").rstrip() + "\n"
        html = None
        if (self.folder / f"{name}.html").is_file():
            html = self._part(f"{name}.html", ctx).strip() + "\n"
        return compose(
            sender=self.sender,
            to=to,
            subject=" ".join(subject.split()),  # a header is one line: no injected headers
            text=text,
            html=html,
            date=self.clock(),
            message_id=make_msgid(domain=self.domain),
        )

    def _part(self, name: str, ctx: dict[str, Any]) -> str:
        try:
            tmpl = self._env.get_template(name)
        except TemplateNotFound:
            stem = name.partition("#")[0].removesuffix(".txt")
            hint = yamlfile.suggest(stem, self.templates())
            raise ConfigError([f"{self.folder}: no e-mail template {stem!r}{hint}"]) from None
        return templating.render(tmpl, ctx)

    def send(self, message: EmailMessage, *, idempotency_key: str) -> SentMail:
        """Send a rendered message under an id derived from ``idempotency_key``.

        The same key always yields the same Message-ID, so a retry is recognisable; the
        message passed in is not modified.

        Raises:
            TransientError: the transport may succeed later.
            PermanentError: it never will.
        """
        msg = with_message_id(message, message_id(idempotency_key, self.domain))
        fresh = self.transport.deliver(msg)
        sent = SentMail(
            message_id=str(msg["Message-ID"]),
            to=str(msg["To"]),
            subject=str(msg["Subject"]),
            transport=self.transport.name,
            at=self.clock(),
        )
        log.info(
            "e-mail %s %s via %s to %s",
            redact(idempotency_key),
            "sent" if fresh else "was already sent",
            self.transport.name,
            redact(sent.to),
        )
        return sent


def _signatures_in(folder: Path) -> Signatures:
    path = folder / "signatures.yaml"
    return Signatures.load(path) if path.is_file() else Signatures()


def _recipient(ctx: Mapping[str, Any]) -> str:
    to = str(ctx.get("to") or "").strip()
    if "@" not in parseaddr(to)[1]:
        raise PermanentError(f"no e-mail address to send to (context 'to' = {redact(to)!r})")
    return to


# ---------------------------------------------------------------------------- actions


def mailer_for(tenant: Tenant) -> Mailer:
    """The tenant's mailer: its ``email:`` settings, or an outbox beside its config."""
    cfg = tenant.config.email or EmailConfig()
    settings = {"transport": cfg.transport, "folder": tenant.base / cfg.outbox, **cfg.smtp}
    signatures = Signatures.load(tenant.base / cfg.signatures) if cfg.signatures else None
    return Mailer(
        tenant.base / cfg.templates,
        sender=cfg.sender,
        transport=transport_from_settings(settings),
        signatures=signatures,
    )


def send_action(mailer: Mailer, conn: Connector, record: Record, action: Action) -> SentMail:
    """Render and send one ``send_email`` action to its recipient, once (by its key).

    Raises:
        PermanentError: no address, or the template cannot render with this record.
        TransientError: the mail server may accept it later.
    """
    p = action.params
    assert isinstance(p, actions.SendEmail)
    to = recipient(conn, record, p.to)
    if not to:
        raise PermanentError(f"{record.ref} has no e-mail address for {p.to!r}: {WHERE_TO[p.to]}")
    manager = record.responsible
    names = (conn.user_name(manager), conn.user_email(manager)) if manager else (None, None)
    message = compose_action(mailer, record, p, to, *names, client_name=conn.contact_name(record))
    return mailer.send(message, idempotency_key=action.key)


WHERE_TO: dict[str, str] = defaultdict(
    lambda: "the field is empty",
    client="the record has no contact, or its contact has no e-mail",
    responsible="the responsible user has no e-mail in the CRM",
)
"""Why a recipient has no address, for the journal."""


EMAIL_VARIABLES = frozenset(
    {"to", "record", "client_name", "manager_name", "manager_email", "signature"}
)
"""The names an e-mail template may use: :func:`template_context` and the signature."""


def template_context(
    record: Record,
    to: str,
    manager_name: str | None = None,
    manager_email: str | None = None,
    client_name: str | None = None,
) -> dict[str, Any]:
    """The variables of an e-mail template (docs/configuration.md, "E-mail templates")."""
    return {
        "to": to,
        "record": record,
        "client_name": record.fields.get("client_name") or client_name or record.title,
        "manager_name": record.fields.get("manager_name") or manager_name or "",
        "manager_email": manager_email or "",
    }


def compose_action(
    mailer: Mailer,
    record: Record,
    p: actions.SendEmail,
    to: str,
    manager_name: str | None = None,
    manager_email: str | None = None,
    *,
    client_name: str | None = None,
) -> EmailMessage:
    """The message a ``send_email`` action sends to ``to`` (rendered, not sent).

    Raises:
        PermanentError: the template cannot render with this record.
    """
    context = template_context(record, to, manager_name, manager_email, client_name)
    try:
        return mailer.render(p.template, context, region=p.region)
    except ConfigError as exc:
        raise PermanentError(f"template {p.template!r}: {exc}") from exc
    except templating.RENDER_ERRORS as exc:
        raise PermanentError(f"template {p.template!r}: {templating.failure(exc)}") from exc


def check_templates(folder: Path, names_for: Callable[[str], templating.Names]) -> list[str]:
    """Every template of a folder read before it is sent: its header, its syntax, and each name
    it uses that its context will not have (a field the mapping lacks), as ``file:line: ...``.

    Args:
        folder: the tenant's e-mail templates.
        names_for: what a template (by name, without ``.txt``) may use; its fields are those
            of the records the rules that send it act on.
    """
    if not folder.is_dir():
        return []
    env = make_environment(folder)
    problems: list[str] = []
    for path in sorted(folder.glob("*.txt")):
        names = names_for(path.stem)
        try:
            subject, body = split_template(path.read_text(encoding="utf-8-sig"), path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        html = path.with_suffix(".html")
        parts = [(path, subject), (path, body)]
        parts += [(html, html.read_text(encoding="utf-8-sig"))] if html.is_file() else []
        for file, source in parts:
            found = templating.unknown_names(env, source, names)
            problems += [f"{file}:{line}: {problem}" for line, problem in found]
    return problems


def as_text(message: EmailMessage, *, masked: bool = True) -> str:
    """An e-mail as lines for a terminal: To, Subject, then the text body, indented."""
    to = str(message["To"])
    body = message.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    lines = [f"e-mail to {redact(to) if masked else to}", f"  Subject: {message['Subject']}"]
    lines += [f"  | {line}" for line in text.rstrip().splitlines()]
    return "\n".join(lines)


def recipient(conn: Connector, record: Record, to: str) -> str | None:
    """The address ``to`` names: the client's, the responsible's, or a field's value."""
    if to == "client":
        return conn.contact_email(record)
    if to == "responsible":
        return conn.user_email(record.responsible) if record.responsible else None
    value = record.value(to)
    return str(value) if value else None
