"""Templates, rule texts and e-mails alike, run in one sandbox: immutable, strict, size-limited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import SecurityError

from bridge.email import Mailer, OutboxTransport
from bridge.models import Record
from bridge.regulations.text import render
from bridge.templating import MAX_OUTPUT

Render = Callable[[str, dict[str, Any]], str]


def rule_text(source: str, context: dict[str, Any]) -> str:
    """A task title or comment, as the engine renders it."""
    return render(source, context)


def email_body(tmp_path: Path) -> Render:
    """An e-mail template file with this body, rendered by the tenant's mailer."""

    def run(source: str, context: dict[str, Any]) -> str:
        (tmp_path / "t.txt").write_text(f"Subject: s\n\n{source}\n", encoding="utf-8")
        outbox = OutboxTransport(tmp_path / "outbox")
        mailer = Mailer(tmp_path, sender="bridge@example.com", transport=outbox)
        message = mailer.render("t", {"to": "client@example.com", **context})
        return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    return run


@pytest.fixture(params=["rule text", "e-mail"])
def renderer(request: pytest.FixtureRequest, tmp_path: Path) -> Render:
    """Each kind of template the bridge renders."""
    return rule_text if request.param == "rule text" else email_body(tmp_path)


def deal() -> Record:
    """A deal whose fields a template might try to change."""
    return Record("deal", "7", "bitrix24", title="Ремонт", fields={"source": "сайт"})


@pytest.mark.parametrize(
    "source",
    [
        "{{ record.fields.update({'source': 'взлом'}) }}",
        "{{ record.fields.__setitem__('source', 'взлом') }}",
        "{{ record.fields.pop('source') }}",
        "{{ record.fields.clear() }}",
    ],
)
def test_a_template_cannot_change_the_record(renderer: Render, source: str) -> None:
    record = deal()
    with pytest.raises(SecurityError, match="unsafe"):
        renderer(source, {"record": record})
    assert record.fields == {"source": "сайт"}


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ 'a' * 10**7 }}", "repeating a str 10,000,000 times"),
        ("{{ 10**7 * 'ab' }}", "repeating a str 10,000,000 times"),
        ("{{ [0] * 10**7 }}", "repeating a list 10,000,000 times"),
        ("{{ 'x'|center(10**8) }}", "the center filter with a width of 100,000,000"),
        ("{{ 'x'.ljust(10**8) }}", "ljust() with a width of 100,000,000"),
        ("{{ '{:>{}}'.format('a', 10**8) }}", "format() with a width of 100,000,000"),
        ("{% for i in range(99999) %}{{ record.title }}{% endfor %}", "the template's text"),
    ],
)
def test_a_huge_text_is_refused_with_a_clear_error(
    renderer: Render, source: str, said: str
) -> None:
    with pytest.raises(SecurityError) as caught:
        renderer(source, {"record": deal()})
    message = str(caught.value)
    assert message.startswith(said)
    assert f"the template size limit of {MAX_OUTPUT:,} characters" in message
    assert "shorten the template" in message


def test_a_huge_number_is_refused(renderer: Render) -> None:
    with pytest.raises(SecurityError, match=r"10 \*\* 100000 is too large a number"):
        renderer("{{ 10 ** 100000 }}", {})


def test_ordinary_templates_are_not_limited(renderer: Render) -> None:
    source = "{{ '-' * 20 }} {{ record.title|center(10) }} {{ 2 ** 10 }} {{ '{:>4}'.format(7) }}"
    assert renderer(source, {"record": deal()}).strip() == "-" * 20 + "   Ремонт   1024    7"
