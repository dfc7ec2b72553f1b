"""Template e-mail: rendering in the sandbox, signatures, the outbox and a real SMTP server."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from jinja2 import UndefinedError
from jinja2.exceptions import FilterArgumentError
from jinja2.sandbox import SecurityError

from bridge.email import (
    Mailer,
    OutboxTransport,
    Signatures,
    SmtpTransport,
    message_id,
    money,
    seven_bit,
    transport_from_settings,
)
from bridge.errors import ConfigError, PermanentError, TransientError

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "templates" / "email"
SENDER = "Ремарка <sales@remarka.example>"
NOW = datetime(2024, 5, 14, 10, 30, tzinfo=UTC)


@dataclass
class Record:
    """The CRM record a template talks about."""

    title: str
    id: int
    amount: Decimal


def context(**extra: Any) -> dict[str, Any]:
    """A complete context for the example templates."""
    return {
        "to": "Иван Петров <ivan.petrov@example.com>",
        "client_name": "Иван Петрович",
        "manager_name": "Анна Смирнова",
        "record": Record("Ремонт квартиры на Тверской", 42, Decimal("350000")),
        **extra,
    }


def mailer(transport: Any = None, folder: Path = TEMPLATES) -> Mailer:
    """A mailer on the example templates with a fixed clock."""
    transport = transport or OutboxTransport(Path("/nonexistent-never-written"))
    return Mailer(folder, sender=SENDER, transport=transport, clock=lambda: NOW)


def parse(data: bytes) -> EmailMessage:
    """Read a message the way any consumer of ours would: the stdlib parser."""
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def plain(msg: EmailMessage) -> str:
    """The text/plain body."""
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def free_port() -> int:
    """A loopback port nobody listens on (the OS picks it, then we let it go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("template", "subject", "phrase"),
    [
        ("no_answer", "Не смогли до вас дозвониться — Ремонт квартиры на Тверской", "дозвониться"),
        ("offer", "Коммерческое предложение: Ремонт квартиры на Тверской", "350\u00a0000\u00a0₽"),
        ("thank_you_after_meeting", "Спасибо за встречу — Ремонт квартиры на Тверской", "встреч"),
        ("quality_sheet", "Оцените нашу работу — Ремонт квартиры на Тверской", "от 1 до 10"),
    ],
)
def test_example_templates_render_and_survive_a_round_trip(
    template: str, subject: str, phrase: str
) -> None:
    msg = mailer().render(template, context(), region="moscow")

    back = parse(msg.as_bytes())
    assert back["Subject"] == subject
    assert back["From"] == SENDER
    assert back["To"] == "Иван Петров <ivan.petrov@example.com>"
    assert back["Date"] == "Tue, 14 May 2024 10:30:00 +0000"
    assert back["Message-ID"].endswith("@remarka.example>")
    body = plain(back)
    assert back.get_body(("plain",)).get_content_charset() == "utf-8"  # type: ignore[union-attr]
    assert body == plain(msg)
    assert "Иван Петрович" in body
    assert phrase in body
    assert "{{" not in body and "{%" not in body


def test_subject_is_one_line_even_when_a_value_has_newlines() -> None:
    record = Record("Ремонт\nBcc: victim@example.com", 1, Decimal(1))
    msg = mailer().render("offer", context(record=record))
    assert msg["Subject"] == "Коммерческое предложение: Ремонт Bcc: victim@example.com"
    assert msg["Bcc"] is None


def test_html_sibling_gives_an_escaped_alternative(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("Subject: Привет, {{ client_name }}\n\n{{ client_name }}\n")
    (tmp_path / "hello.html").write_text("<p>{{ client_name }}</p>\n")

    msg = mailer(folder=tmp_path).render("hello", context(client_name="<b>Иван & Co</b>"))

    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html == "<p>&lt;b&gt;Иван &amp; Co&lt;/b&gt;</p>\n"
    assert plain(msg) == "<b>Иван & Co</b>\n"  # text is never escaped
    assert msg["Subject"] == "Привет, <b>Иван & Co</b>"


def test_example_html_alternative_lists_the_agreements() -> None:
    agreements = ["смета до пятницы", "замер 12 мая"]
    msg = mailer().render("thank_you_after_meeting", context(agreements=agreements))
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<li>смета до пятницы</li>" in html
    assert "- замер 12 мая" in plain(msg)


def test_missing_variable_is_an_error_naming_it() -> None:
    ctx = context()
    del ctx["manager_name"]
    with pytest.raises(UndefinedError, match="'manager_name' is undefined"):
        mailer().render("no_answer", ctx)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ record.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_refuses_python_internals(tmp_path: Path, source: str) -> None:
    (tmp_path / "evil.txt").write_text(f"Subject: hello\n\n{source}\n")
    with pytest.raises(SecurityError):
        mailer(folder=tmp_path).render("evil", context())


def test_sandbox_keeps_the_context_unchanged(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Subject: s\n\n{{ agreements.append('лишнее') }}\n")
    agreements = ["замер"]
    with pytest.raises(SecurityError):
        mailer(folder=tmp_path).render("t", context(agreements=agreements))
    assert agreements == ["замер"]


def test_sandbox_guards_the_subject_too(tmp_path: Path) -> None:
    (tmp_path / "evil.txt").write_text("Subject: {{ ''.__class__ }}\n\nbody\n")
    with pytest.raises(SecurityError):
        mailer(folder=tmp_path).render("evil", context())


@pytest.mark.parametrize(
    ("text", "line"),
    [("Hello\n\nbody\n", 1), ("Subject: hi\nbody right away\n", 2)],
)
def test_malformed_header_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.txt:{line}: "):
        mailer(folder=tmp_path).render("bad", context())


def test_unknown_template_suggests_a_close_name() -> None:
    with pytest.raises(
        ConfigError, match="no e-mail template 'no_answr' .*did you mean 'no_answer'"
    ):
        mailer().render("no_answr", context())


def test_template_name_cannot_leave_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("Subject: s\n\nsecret\n")
    folder = tmp_path / "templates"
    folder.mkdir()
    with pytest.raises(ConfigError, match="no e-mail template '../secret'"):
        mailer(folder=folder).render("../secret", context())


@pytest.mark.parametrize("to", [None, "", "not an address"])
def test_a_recipient_without_address_is_permanent(to: str | None) -> None:
    with pytest.raises(PermanentError, match="no e-mail address"):
        mailer().render("no_answer", context(to=to))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (350000, "350\u00a0000\u00a0₽"),
        ("99.5", "99,50\u00a0₽"),
        (Decimal("1234567.891"), "1\u00a0234\u00a0567,89\u00a0₽"),
    ],
)
def test_money_formats_the_russian_way(value: Any, text: str) -> None:
    assert money(value) == text


def test_money_refuses_text() -> None:
    with pytest.raises(FilterArgumentError, match="not a number"):
        money("сто рублей")


# ---------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("region", "marker"),
    [
        ("moscow", "Москва, ул. Примерная"),
        ("SPB", "Санкт-Петербург"),
        ("kazan", "8 800 000-00-00"),
        (None, "8 800 000-00-00"),
    ],
)
def test_signature_is_chosen_by_region_with_default_fallback(
    region: str | None, marker: str
) -> None:
    body = plain(mailer().render("no_answer", context(), region=region))
    assert marker in body
    others = {"Москва, ул. Примерная", "Санкт-Петербург", "8 800 000-00-00"} - {marker}
    assert not any(other in body for other in others)


def test_signatures_load_the_example_file() -> None:
    sigs = Signatures.load(TEMPLATES / "signatures.yaml")
    assert set(sigs.regions) == {"moscow", "spb"}
    assert sigs.default.startswith("С уважением,")
    assert not sigs.default.endswith("\n")
    assert sigs.for_region(" Moscow ") == sigs.regions["moscow"]


def test_signatures_without_default_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "signatures.yaml"
    path.write_text("moscow: Москва\nspb:\n  - not text\n")
    with pytest.raises(ConfigError) as err:
        Signatures.load(path)
    assert err.value.problems == [
        f"{path}:2: spb: the signature must be text",
        f"{path}:1: default: required key is missing",
    ]


def test_a_folder_without_signatures_renders_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Subject: s\n\nТекст\n[{{ signature }}]\n")
    assert plain(mailer(folder=tmp_path).render("t", context())) == "Текст\n[]\n"


# ---------------------------------------------------------------------------- message ids


def test_message_id_keeps_a_plain_key_readable() -> None:
    assert (
        message_id("deal-42.no_answer", "remarka.example") == "<deal-42.no_answer@remarka.example>"
    )


def test_message_id_cleans_unsafe_keys_without_collisions() -> None:
    one = message_id("deal:42/../x", "d.example")
    two = message_id("deal-42-..-x", "d.example")
    assert one != two
    assert one.startswith("<deal-42----x.") and one.endswith("@d.example>")
    assert len(message_id("к" * 500, "d.example")) < 80


def test_message_id_needs_a_key() -> None:
    with pytest.raises(ValueError, match="empty"):
        message_id("", "d.example")


# ---------------------------------------------------------------------------- outbox


def test_outbox_writes_one_eml_read_back_identically(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    m = mailer(outbox)
    msg = m.render("offer", context(), region="spb")

    sent = m.send(msg, idempotency_key="deal-42-offer")

    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["deal-42-offer@remarka.example.eml"]
    back = parse(files[0].read_bytes())
    assert back["Message-ID"] == sent.message_id == "<deal-42-offer@remarka.example>"
    expected = [(k, v) for k, v in msg.items() if k != "Message-ID"]
    assert [(k, v) for k, v in back.items() if k != "Message-ID"] == expected
    assert plain(back) == plain(msg)
    assert "Санкт-Петербург" in plain(back)
    assert msg["Message-ID"] != sent.message_id  # send copies; the caller's message is intact
    assert sent.to == msg["To"] and sent.subject == msg["Subject"]
    assert (sent.transport, sent.at) == ("outbox", NOW)


def test_outbox_repeated_send_with_the_same_key_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    m = mailer(OutboxTransport(folder))
    first = m.send(m.render("no_answer", context()), idempotency_key="deal-42-f4")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    # a retry renders anew (another provisional id, another name) but keeps the key
    again = m.render("no_answer", context(client_name="Другое имя"))
    second = m.send(again, idempotency_key="deal-42-f4")

    assert second.message_id == first.message_id
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    m.send(again, idempotency_key="deal-43-f4")
    assert len(list(folder.iterdir())) == 2


def test_outbox_refuses_an_unsafe_message_id(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Message-ID"] = "<../../etc/passwd>"
    with pytest.raises(PermanentError, match="not a safe file name"):
        OutboxTransport(tmp_path).deliver(msg)


def test_outbox_that_cannot_be_written_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    m = mailer(OutboxTransport(blocker / "outbox"))
    with pytest.raises(TransientError, match="cannot write"):
        m.send(m.render("no_answer", context()), idempotency_key="k")


def test_logs_mask_addresses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    m = mailer(OutboxTransport(tmp_path))
    with caplog.at_level(logging.INFO, logger="bridge.email"):
        m.send(m.render("no_answer", context()), idempotency_key="deal-42-f4")
        m.send(m.render("no_answer", context()), idempotency_key="deal-42-f4")
    assert "ivan.petrov@example.com" not in caplog.text
    assert "i***@example.com" in caplog.text
    assert "deal-42-f4 sent via outbox" in caplog.text
    assert "deal-42-f4 was already sent via outbox" in caplog.text


# ---------------------------------------------------------------------------- SMTP


@dataclass
class Capture:
    """An aiosmtpd handler: keeps what arrives, rejects ``nobody@`` with 550."""

    envelopes: list[Any] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("busy@"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    """aiosmtpd authenticator: only bridge / s3cret may send."""
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bridge", b"s3cret")
    # handled=False: aiosmtpd itself answers a failure with 535
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Capture, int]]:
    """A real SMTP server on loopback, with login (allowed without TLS: loopback only)."""
    handler = Capture()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=check_login,
        auth_require_tls=False,
    )
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_smtp_delivers_with_the_right_headers_and_body(smtp_server: tuple[Capture, int]) -> None:
    handler, port = smtp_server
    m = mailer(SmtpTransport("127.0.0.1", port, timeout=5))
    msg = m.render("offer", context(), region="moscow")

    sent = m.send(msg, idempotency_key="deal-42-offer")

    assert sent.transport == "smtp"
    [envelope] = handler.envelopes
    assert envelope.mail_from == "sales@remarka.example"
    assert envelope.rcpt_tos == ["ivan.petrov@example.com"]
    assert "BODY=8BITMIME" in envelope.mail_options
    back = parse(envelope.original_content)
    assert back["Message-ID"] == "<deal-42-offer@remarka.example>"
    assert back["Subject"] == "Коммерческое предложение: Ремонт квартиры на Тверской"
    assert back["From"] == SENDER
    assert back["To"] == msg["To"]
    assert back["Date"] == msg["Date"]
    assert plain(back) == plain(msg)
    assert "350\u00a0000\u00a0₽" in plain(back)


def test_smtp_logs_in_with_the_password_from_the_environment(
    smtp_server: tuple[Capture, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = smtp_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    settings = {"host": "127.0.0.1", "port": port, "username": "bridge"}
    transport = SmtpTransport.from_settings({**settings, "password_env": "TEST_SMTP_PASSWORD"})
    assert "s3cret" not in repr(transport)
    m = mailer(transport)
    m.send(m.render("no_answer", context()), idempotency_key="k1")
    assert len(handler.envelopes) == 1


def test_smtp_wrong_password_is_permanent(
    smtp_server: tuple[Capture, int],
) -> None:
    _, port = smtp_server
    m = mailer(SmtpTransport("127.0.0.1", port, username="bridge", password="wrong", timeout=5))
    with pytest.raises(PermanentError, match="535"):
        m.send(m.render("no_answer", context()), idempotency_key="k1")


def test_smtp_server_down_is_transient() -> None:
    m = mailer(SmtpTransport("127.0.0.1", free_port(), timeout=5))
    with pytest.raises(TransientError, match="unreachable"):
        m.send(m.render("no_answer", context()), idempotency_key="k1")


def test_smtp_recipient_rejected_with_550_is_permanent_and_masked(
    smtp_server: tuple[Capture, int],
) -> None:
    handler, port = smtp_server
    m = mailer(SmtpTransport("127.0.0.1", port, timeout=5))
    msg = m.render("no_answer", context(to="nobody@example.com"))
    with pytest.raises(PermanentError, match="550") as err:
        m.send(msg, idempotency_key="k1")
    assert "nobody@example.com" not in str(err.value)
    assert "n***@example.com" in str(err.value)
    assert handler.envelopes == []


def test_smtp_recipient_deferred_with_450_is_transient(smtp_server: tuple[Capture, int]) -> None:
    _, port = smtp_server
    m = mailer(SmtpTransport("127.0.0.1", port, timeout=5))
    with pytest.raises(TransientError, match="450"):
        m.send(m.render("no_answer", context(to="busy@example.com")), idempotency_key="k1")


def test_seven_bit_copy_is_ascii_and_reads_back_the_same() -> None:
    msg = mailer().render("thank_you_after_meeting", context())
    data = seven_bit(msg).as_bytes()
    data.decode("ascii")  # raises if any 8bit byte is left
    back = parse(data)
    assert plain(back) == plain(msg)
    assert back.get_body(("html",)).get_content() == msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- settings


def test_from_settings_refuses_a_password_in_the_config() -> None:
    with pytest.raises(ConfigError, match="smtp.password: a password is never written"):
        SmtpTransport.from_settings({"host": "smtp.example", "password": "hunter2"})


def test_from_settings_names_an_unset_variable_and_unknown_keys() -> None:
    settings = {"host": "smtp.example", "password_env": "NO_SUCH_VAR", "startls": True}
    with pytest.raises(ConfigError) as err:
        SmtpTransport.from_settings(settings, environ={})
    assert err.value.problems == [
        "smtp.startls: unknown key (did you mean 'starttls'?)",
        "smtp.password_env: the environment variable NO_SUCH_VAR is not set",
    ]


def test_from_settings_reads_defaults() -> None:
    transport = SmtpTransport.from_settings(
        {"host": "smtp.example", "username": "u", "password_env": "P"}, environ={"P": "pw"}
    )
    assert transport == SmtpTransport("smtp.example", 25, "u", "pw", False, 10)


def test_the_default_transport_is_the_outbox(tmp_path: Path) -> None:
    assert transport_from_settings(None, outbox=tmp_path) == OutboxTransport(tmp_path)
    smtp = transport_from_settings({"transport": "smtp", "host": "h", "port": 587, "folder": "x"})
    assert smtp == SmtpTransport("h", 587)
    outbox = transport_from_settings({"folder": tmp_path, "host": "h", "port": 587})
    assert outbox == OutboxTransport(tmp_path)
    with pytest.raises(ConfigError, match="unknown transport 'pigeon'"):
        transport_from_settings({"transport": "pigeon"})
