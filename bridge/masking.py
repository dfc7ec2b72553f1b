"""Keep secrets and personal data out of logs and the journal.

One helper used everywhere: webhook URLs (the secret is part of the path), tokens, phone
numbers and e-mail addresses are masked before any text is logged or journaled. What a CRM's
secrets look like in text is declared by the CRM (``secret_patterns``) and read here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

_SECRETS: list[re.Pattern[str]] = []  # the CRMs' own (webhook codes, secret path segments)
_BEARER = re.compile(r"(Bearer\s+)([A-Za-z0-9._~+/=-]+)")
# an address as text shows it, or percent-encoded as a URL carries it (``a%40b.ru``)
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# +<country><number> in any grouping, or a Russian 11-digit number starting with 7 or 8;
# bare digit runs (ids, Unix times) are left alone
_PHONE = re.compile(
    r"(?<![\w.])((?:\+|%2[Bb])\d(?:[\s\-()]{0,2}\d){9,14}|[78](?:[\s\-()]{0,2}\d){10})(?![\w.])"
)
_TOKEN_KEYS = re.compile(
    r"((?:application_token|access_token|refresh_token|auth)[\]\"']?\s*[=:]\s*[\"']?)([^&\s\"',}]+)"
)


def mask_phone(phone: str) -> str:
    """``+7 912 345-67-89`` -> ``+7*******89``: enough to tell numbers apart, not to call."""
    phone = re.sub("^%2[Bb]", "+", phone)  # as a URL's query carries it
    digits = re.sub(r"\D", "", phone)
    return f"{phone[:2]}{'*' * max(len(digits) - 3, 3)}{digits[-2:]}"


def redact(text: Any) -> str:
    """Mask webhook secrets, tokens, e-mail addresses and phone numbers in a text."""
    out = str(text)
    if not _ANY[0].search(out):
        return out  # most texts hold none: one search instead of a substitution per pattern
    for pattern in _SECRETS:
        out = pattern.sub(r"\1***", out)
    out = _BEARER.sub(r"\1***", out)
    out = _TOKEN_KEYS.sub(r"\1***", out)
    out = _EMAIL.sub(r"\1***@\2", out)
    return _PHONE.sub(lambda m: mask_phone(m.group(1)), out)


def redact_data(value: Any) -> Any:
    """A JSON value with :func:`redact` applied to every string in it (keys kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def unredacted_like(kept: Any, current: Any) -> Any:
    """``kept`` (a value as the journal stored it, redacted) with each part that is
    ``current``'s own, redacted, put back as ``current``'s.

    A stored snapshot is compared with the record as it is now: a phone that did not change
    must compare equal, though one side is masked. (Two numbers that mask alike, differing in
    the middle digits only, compare equal too: the price of keeping no phone.)
    """
    if kept == current:
        return current
    if isinstance(kept, dict) and isinstance(current, dict):
        return {k: unredacted_like(v, current[k]) if k in current else v for k, v in kept.items()}
    if isinstance(kept, list) and isinstance(current, list) and len(kept) == len(current):
        return [unredacted_like(a, b) for a, b in zip(kept, current, strict=True)]
    if isinstance(kept, str) and isinstance(current, str) and redact(current) == kept:
        return current
    return kept


def add_secret_patterns(patterns: Iterable[str]) -> None:
    """Mask what these regexes match too: group 1 is kept, group 2 is the secret.

    The CRM registry calls this with each CRM's ``secret_patterns`` as it registers it.
    """
    for pattern in patterns:
        compiled = re.compile(pattern)
        if compiled not in _SECRETS:
            _SECRETS.append(compiled)
    _ANY[0] = _any()


def _any() -> re.Pattern[str]:
    """One pattern that finds whatever any of the masking patterns would."""
    every = [*_SECRETS, _BEARER, _TOKEN_KEYS, _EMAIL, _PHONE]
    return re.compile("|".join(f"(?:{p.pattern})" for p in every))


_ANY = [_any()]


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record's message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to every handler of the root logger."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
