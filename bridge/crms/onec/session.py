"""The exchange's sessions: HTTP Basic once (``checkauth``), then the cookie it handed out.

The cookie's value is a token signed with the tenant's exchange password (itsdangerous, which
Flask already brings): any web process of the bridge can check it, nothing is stored, and it
expires after ``session_ttl``. Its random part names the session's upload folder.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "bridge-1c-exchange"


class Sessions:
    """Issues and checks one tenant's exchange tokens."""

    def __init__(self, tenant: str, login: str, password: str, ttl: int) -> None:
        self.login, self.password, self.ttl = login, password, ttl
        self._signer = URLSafeTimedSerializer(password, salt=f"{SALT}:{tenant}")

    def authenticate(self, header: str | None) -> bool:
        """Does an ``Authorization: Basic`` header carry the tenant's login and password?"""
        login, password = credentials(header)
        same_login = hmac.compare_digest(login.encode(), self.login.encode())
        return same_login and hmac.compare_digest(password.encode(), self.password.encode())

    def issue(self) -> str:
        """A new session's token."""
        return self._signer.dumps(secrets.token_hex(16))

    def session(self, token: str | None) -> str | None:
        """The session a token names, or None (absent, forged, expired)."""
        if not token:
            return None
        try:
            return str(self._signer.loads(token, max_age=self.ttl))
        except BadSignature:
            return None


def credentials(header: str | None) -> tuple[str, str]:
    """The login and password of an ``Authorization: Basic`` header (empty when it has none).

    1C encodes the pair in UTF-8, older platforms in windows-1251: both are tried.
    """
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "", ""
    for codec in ("utf-8", "windows-1251"):
        try:
            login, _, password = raw.decode(codec).partition(":")
        except UnicodeDecodeError:
            continue
        return login, password
    return "", ""
