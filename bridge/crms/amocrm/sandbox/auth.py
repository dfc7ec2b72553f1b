"""OAuth 2.0 of the amoCRM sandbox: codes, access/refresh pairs, long-lived tokens.

https://www.amocrm.ru/developers/content/oauth/oauth and .../oauth/step-by-step (reference
§2.11): ``POST /oauth2/access_token`` with a JSON body, ``grant_type`` ``authorization_code`` or
``refresh_token``; the answer carries ``token_type, expires_in, server_time, access_token,
refresh_token``. A refresh token is single-use («старым ключем воспользоваться уже будет
невозможно»); reusing one gives 401 ``"hint": "Token has been revoked"`` (amocrm-api-php#123).
The other hints are league/oauth2-server's texts, the library amoCRM's answers come from
(assessment: only the revoked one is quoted in the reference).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.crms.amocrm.sandbox.data import (
    CODE_TTL,
    REFRESH_TTL,
    ApiError,
    oauth_error,
    unauthorized,
)


@dataclass
class Grant:
    """One issued code, access token or refresh token."""

    user_id: int
    expires: float
    used: bool = False


INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked or was issued to another client."
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _client_failed() -> ApiError:
    return oauth_error(401, "Client authentication failed", "Client authentication failed")


class OAuthServer:
    """Issues and checks tokens; ``clock`` gives the account's unix time."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        access_ttl: int,
        clock: Callable[[], float],
        api_domain: Callable[[], str],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.access_ttl = access_ttl
        self.refresh_log: list[dict[str, Any]] = []
        self._clock = clock
        self._api_domain = api_domain
        self._lock = threading.Lock()
        self._codes: dict[str, Grant] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}

    # --- issuing -----------------------------------------------------------------------------

    def issue_code(self, user_id: int) -> str:
        """An authorization code, valid 20 minutes, single-use."""
        code = "def50200" + secrets.token_hex(32)
        with self._lock:
            self._codes[code] = Grant(user_id, self._clock() + CODE_TTL)
        return code

    def long_lived(self, user_id: int, days: int) -> str:
        """A long-lived access token (a JWT with ``exp``, no refresh token)."""
        with self._lock:
            return self._jwt(user_id, days * 86400)

    def expire_all(self) -> None:
        """Every access token issued so far (long-lived ones too) answers 401 from now on."""
        now = self._clock()
        with self._lock:
            for grant in self._access.values():
                grant.expires = min(grant.expires, now - 1)

    def owner(self, authorization: str | None) -> int:
        """The user behind ``Authorization: Bearer <token>``.

        Raises:
            ApiError: 401, the token is missing, unknown or expired.
        """
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            grant = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
            if grant is None or grant.expires <= self._clock():
                raise unauthorized()
            return grant.user_id

    def _jwt(self, user_id: int, ttl: int) -> str:
        # Claims named by the reference (exp, api_domain) plus the standard jti, so that two
        # tokens issued in the same second differ.
        expires = int(self._clock()) + ttl
        header = {"typ": "JWT", "alg": "HS256"}
        claims = {"jti": secrets.token_hex(16), "exp": expires, "api_domain": self._api_domain()}
        signing = ".".join(_b64(json.dumps(p).encode()) for p in (header, claims))
        key = self.client_secret.encode()
        signature = hmac.new(key, signing.encode(), hashlib.sha256).digest()
        token = f"{signing}.{_b64(signature)}"
        self._access[token] = Grant(user_id, expires)
        return token

    def _pair(self, user_id: int) -> dict[str, Any]:
        refresh = "def50200" + secrets.token_hex(48)
        self._refresh[refresh] = Grant(user_id, self._clock() + REFRESH_TTL)
        return {
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "server_time": int(self._clock()),
            "access_token": self._jwt(user_id, self.access_ttl),
            "refresh_token": refresh,
        }

    # --- POST /oauth2/access_token -----------------------------------------------------------

    def exchange(self, body: Any) -> dict[str, Any]:
        """Answer one token request.

        Raises:
            ApiError: 400/401 with the OAuth problem body.
        """
        if not isinstance(body, Mapping):
            raise oauth_error(400, "Check the request body", "The request is missing a parameter")
        grant_type = body.get("grant_type")
        if grant_type == "refresh_token":
            return self._by_refresh(body)
        if grant_type != "authorization_code":
            raise oauth_error(
                400,
                "Check that all required parameters have been provided",
                "The authorization grant type is not supported by the authorization server.",
            )
        self._check_client(body)
        if body.get("redirect_uri") != self.redirect_uri:
            raise _client_failed()
        return self._by_code(body.get("code"))

    def _check_client(self, body: Mapping[str, Any]) -> None:
        same_id = body.get("client_id") == self.client_id
        secret = str(body.get("client_secret", ""))
        if not (same_id and hmac.compare_digest(secret, self.client_secret)):
            raise _client_failed()

    def _by_code(self, code: Any) -> dict[str, Any]:
        with self._lock:
            grant = self._codes.get(code) if isinstance(code, str) else None
            if grant is None or grant.used:
                raise oauth_error(
                    400,
                    "Authorization code has been revoked",
                    INVALID_GRANT,
                )
            if grant.expires <= self._clock():
                raise oauth_error(
                    400, "Authorization code has expired", "The authorization code is expired"
                )
            grant.used = True
            return self._pair(grant.user_id)

    def _by_refresh(self, body: Mapping[str, Any]) -> dict[str, Any]:
        token = body.get("refresh_token")
        entry: dict[str, Any] = {"time": time.monotonic(), "refresh_token": token, "ok": False}
        try:
            self._check_client(body)
            with self._lock:
                grant = self._refresh.get(token) if isinstance(token, str) else None
                if grant is None:
                    raise oauth_error(
                        401, "Cannot decrypt the refresh token", "The refresh token is invalid."
                    )
                if grant.used:
                    raise oauth_error(
                        401, "Token has been revoked", "The refresh token is invalid."
                    )
                if grant.expires <= self._clock():
                    raise oauth_error(401, "Token has expired", "The refresh token is invalid.")
                grant.used = True
                pair = self._pair(grant.user_id)
            entry["ok"] = True
            return pair
        finally:
            with self._lock:
                self.refresh_log.append(entry)

    def refresh_token_live(self, refresh_token: str | None) -> bool:
        """Whether ``refresh_token`` is a live one (GET /oauth2/account/current/subdomain)."""
        with self._lock:
            grant = self._refresh.get(refresh_token or "")
            return grant is not None and not grant.used and grant.expires > self._clock()
