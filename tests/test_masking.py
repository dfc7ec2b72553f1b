"""Secrets and personal data never reach the logs."""

from __future__ import annotations

import logging

from bridge.masking import RedactingFilter, redact


def test_webhook_secret_is_masked() -> None:
    text = "POST https://x.bitrix24.ru/rest/1/abc123secret/crm.deal.get failed"
    assert redact(text) == "POST https://x.bitrix24.ru/rest/1/***/crm.deal.get failed"


def test_phones_and_emails_are_masked_but_ids_and_times_are_not() -> None:
    out = redact("client +7 (912) 345-67-89, ivan.petrov@mail.ru, deal 12345, ts 1766047124")
    assert "345-67" not in out and "ivan.petrov" not in out
    assert "i***@mail.ru" in out and "deal 12345" in out and "1766047124" in out


def test_application_token_in_a_form_body_is_masked() -> None:
    assert redact("auth[application_token]=s3cr3t&x=1") == "auth[application_token]=***&x=1"


def test_log_records_are_redacted() -> None:
    logger = logging.getLogger("bridge.test")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("calling %s for %s", "https://p.bitrix24.ru/rest/7/topsecret/x", "a@b.ru")
    finally:
        logger.removeHandler(handler)
    assert seen == ["calling https://p.bitrix24.ru/rest/7/***/x for a***@b.ru"]


def test_phones_and_emails_percent_encoded_in_a_url_are_masked() -> None:
    line = '"GET /health?phone=%2B79123456789&email=ivan.petrov%40example.com HTTP/1.1" 200'
    assert redact(line) == '"GET /health?phone=+7********89&email=i***@example.com HTTP/1.1" 200'
