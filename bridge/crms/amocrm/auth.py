"""amoCRM credentials: OAuth 2.0 pairs that never lock the bridge out, or a long-lived token.

D:oauth/oauth, D:oauth/step-by-step (D: = https://www.amocrm.ru/developers/content/; reference
§2.11): ``POST /oauth2/access_token`` exchanges a code (20 minutes) for an access token (a JWT,
a day) and a refresh token (3 months). A refresh token is single-use and rotates: «старым
ключем воспользоваться уже будет невозможно». So the only valid refresh token must never be
lost, however many workers refresh at once and wherever one crashes:

* the pair lives in Redis as ONE value (``SET`` of a JSON document: a reader sees the old pair
  or the new one, never half of each);
* refreshing happens under a Redis lock per account, and the pair is re-read after the lock is
  taken: a worker that waited finds the pair another worker just saved and does not refresh;
* the new pair is saved before its access token is used; a failed save is retried, and a pair
  whose save kept failing is held in memory and saved first on the next call, never used
  unsaved.

The window that remains (docs/architecture.md): the process dies, or Redis stays unreachable,
between amoCRM answering the refresh and the ``SET`` landing (milliseconds), or the refresh's
answer is lost on the network after amoCRM rotated the token. Then the stored refresh token is
dead, the next refresh gets "Token has been revoked", and the tenant pauses until an admin
runs ``bridge amocrm-auth CODE --tenant NAME``. amoCRM offers no grace period to close it.

A tenant whose credentials are dead is paused, not failed: a flag in Redis, tied to a
fingerprint of the dead credential, makes every call raise :class:`TenantPaused` (a transient
error: rq keeps and retries the events) without touching amoCRM; new credentials (a code
exchange, another long-lived token) no longer match the fingerprint and resume the tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis
from redis.exceptions import LockError, LockNotOwnedError

from bridge.crms.amocrm.http import Transport, body_of, classify
from bridge.errors import AuthError, RedisUnavailable, TenantPaused, TransientError
from bridge.masking import redact

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/access_token"
REFRESH_MARGIN = 300  # refresh this many seconds before the access token's `exp`
LOCK_TTL = 60  # a refresh holds the lock at most this long (well above the HTTP timeout)
LOCK_WAIT = 30  # a worker waits this long for another one's refresh
SAVE_ATTEMPTS = 5


def _key(account_id: int | str, what: str) -> str:
    return f"bridge:amocrm:{account_id}:{what}"


def fingerprint(secret: str) -> str:
    """A short hash that tells credentials apart without storing them twice."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def jwt_exp(token: str) -> int | None:
    """The ``exp`` claim of a JWT, read without checking the signature (not ours to check)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class TokenPair:
    """An access token, its refresh token, and when the access token expires (unix)."""

    access_token: str
    refresh_token: str
    expires_at: int

    @classmethod
    def from_answer(cls, body: dict[str, Any], now: float) -> TokenPair:
        """From ``{token_type, expires_in, access_token, refresh_token}`` (D:oauth/oauth)."""
        access = str(body["access_token"])
        expires = jwt_exp(access) or int(now) + int(body.get("expires_in") or 0)
        return cls(access, str(body["refresh_token"]), expires)

    def fresh(self, now: float, margin: int) -> bool:
        """Whether the access token is good for at least ``margin`` more seconds."""
        return self.expires_at - margin > now


class TokenStore:
    """The pair of one account in Redis, and the lock that serialises its refreshes."""

    def __init__(self, client: redis.Redis, account_id: int | str) -> None:
        self.redis = client
        self.key = _key(account_id, "tokens")

    def load(self) -> TokenPair | None:
        """The stored pair, or None."""
        raw = self.redis.get(self.key)
        return TokenPair(**json.loads(raw)) if raw else None

    def save(self, pair: TokenPair) -> None:
        """Store the pair with one ``SET`` (atomic: never half old, half new)."""
        self.redis.set(self.key, json.dumps(asdict(pair)))

    def lock(self) -> Any:
        """The per-account refresh lock (expires by itself if its holder dies)."""
        return self.redis.lock(f"{self.key}:lock", timeout=LOCK_TTL)


class Pause:
    """The paused flag of one account, bound to the fingerprint of the dead credential."""

    def __init__(self, client: redis.Redis, account_id: int | str, tenant: str) -> None:
        self.redis = client
        self.key = _key(account_id, "paused")
        self.tenant = tenant

    def check(self, credential: str) -> None:
        """Raise :class:`TenantPaused` while ``credential`` is the one found dead."""
        raw = self.redis.get(self.key)
        if raw:
            flag = json.loads(raw)
            if flag.get("credential") == fingerprint(credential):
                raise TenantPaused(flag["reason"])

    def set(self, credential: str, why: str) -> TenantPaused:
        """Pause the tenant for this credential; returns the error to raise."""
        reason = (
            f"tenant {self.tenant} paused, its events stay queued: {redact(why)}; "
            f"re-authorize with `bridge amocrm-auth CODE --tenant {self.tenant}` "
            "(or configure a new long-lived token)"
        )
        self.redis.set(
            self.key, json.dumps({"credential": fingerprint(credential), "reason": reason})
        )
        log.error("%s", reason)
        return TenantPaused(reason)

    def clear(self) -> None:
        """Resume the tenant (new credentials were stored)."""
        self.redis.delete(self.key)


class OAuthClient:
    """``POST /oauth2/access_token`` for one integration and account."""

    def __init__(
        self,
        transport: Transport,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport
        self.credentials = {"client_id": client_id, "client_secret": client_secret}
        self.redirect_uri = redirect_uri
        self.clock = clock

    def exchange_code(self, code: str) -> TokenPair:
        """An authorization code → the first pair (D:oauth/step-by-step)."""
        return self._grant({"grant_type": "authorization_code", "code": code})

    def refresh(self, refresh_token: str) -> TokenPair:
        """A refresh token → a new pair; the old refresh token is dead afterwards."""
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _grant(self, grant: dict[str, str]) -> TokenPair:
        body = {**self.credentials, **grant, "redirect_uri": self.redirect_uri}
        response = self.transport.send("POST", TOKEN_PATH, body=body)
        if response.status_code == 200:
            return TokenPair.from_answer(response.json(), self.clock())
        answer = body_of(response)
        what = f"OAuth {grant['grant_type']}"
        if response.status_code in (400, 401, 403):
            # {"hint": "Token has been revoked", ...} (amocrm-api-php#123, reference §2.11)
            hint = answer.get("hint") or answer.get("title") or answer.get("detail") or ""
            raise AuthError(f"{what} refused (HTTP {response.status_code}): {redact(hint)}")
        raise classify(response.status_code, answer, what)


class OAuthTokens:
    """Access tokens from the stored pair, refreshed ahead of expiry and after a 401."""

    def __init__(
        self,
        store: TokenStore,
        client: OAuthClient,
        pause: Pause,
        bootstrap: Callable[[], str | None],
        *,
        margin: int = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.client, self.paused = store, client, pause
        self.bootstrap = bootstrap  # the initial refresh token (refresh_token_env), if any
        self.margin, self.clock, self.sleep = margin, clock, sleep
        self._unsaved: TokenPair | None = None

    def access_token(self) -> str:
        """The stored access token, refreshed first when it expires within the margin.

        Raises:
            TenantPaused: the stored refresh token was found dead.
            TransientError: Redis, the lock or amoCRM could not be had now.
        """
        self._flush_unsaved()
        pair = self._load()
        if pair is not None:
            self.paused.check(pair.refresh_token)
        if pair is None or not pair.fresh(self.clock(), self.margin):
            pair = self._refresh(stale=pair.access_token if pair else None)
        return pair.access_token

    def refresh(self, stale: str) -> str:
        """A new access token after ``stale`` got 401 (once per call, see ``Api.call``)."""
        self._flush_unsaved()
        return self._refresh(stale).access_token

    def pause(self, reason: str) -> TransientError:
        """Pause the tenant for the stored refresh token (used after a refused API call)."""
        pair = self._load()
        return self.paused.set(pair.refresh_token if pair else "", reason)

    def authorize(self, code: str) -> TokenPair:
        """Exchange an authorization code and store the pair (``bridge amocrm-auth``)."""
        with self._locked():
            pair = self.client.exchange_code(code)
            self._save(pair)
        self.paused.clear()
        return pair

    def _refresh(self, stale: str | None) -> TokenPair:
        with self._locked():
            current = self._load()  # another worker may have refreshed while we waited
            fresh = current is not None and current.fresh(self.clock(), self.margin)
            if current is not None and current.access_token != stale and fresh:
                return current
            refresh_token = current.refresh_token if current else self.bootstrap()
            if not refresh_token:
                raise self.paused.set("", "no amoCRM tokens are stored for this account")
            self.paused.check(refresh_token)
            try:
                pair = self.client.refresh(refresh_token)
            except AuthError as exc:
                raise self.paused.set(refresh_token, str(exc)) from None
            self._save(pair)  # before anyone uses it
            log.info("amoCRM tokens refreshed and saved (%s)", self.store.key)
            return pair

    def _locked(self) -> Any:
        lock = self.store.lock()
        try:
            acquired = lock.acquire(blocking_timeout=LOCK_WAIT)
        except redis.RedisError as exc:
            raise RedisUnavailable(f"amoCRM token lock: {type(exc).__name__}") from None
        if not acquired:
            raise TransientError("amoCRM tokens: another worker's refresh is taking too long")
        return _Release(lock)

    def _load(self) -> TokenPair | None:
        try:
            return self.store.load()
        except redis.RedisError as exc:
            raise RedisUnavailable(f"amoCRM tokens: Redis: {type(exc).__name__}") from None

    def _save(self, pair: TokenPair) -> None:
        """Store a new pair, retrying; if Redis keeps failing, hold it to save it next time."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                self.store.save(pair)
                self._unsaved = None
                return
            except redis.RedisError as exc:
                log.warning("saving refreshed amoCRM tokens failed (%s), retrying", exc)
                self.sleep(0.05 * 2**attempt)
        self._unsaved = pair
        log.error("refreshed amoCRM tokens could not be saved; held in memory until they are")
        raise TransientError("amoCRM tokens were refreshed but could not be saved yet")

    def _flush_unsaved(self) -> None:
        if self._unsaved is not None:
            self._save(self._unsaved)


class _Release:
    """Releases a Redis lock on leaving a ``with`` block, tolerating one that expired."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        try:
            self.lock.release()
        except (LockNotOwnedError, LockError, redis.RedisError):
            log.warning("the amoCRM token lock expired before it was released")


class LongLivedToken:
    """A long-lived token (D:oauth/oauth «долгосрочный токен», 1 day to 5 years): no refresh."""

    def __init__(self, token: Callable[[], str], pause: Pause) -> None:
        self.token = token
        self.paused = pause

    def access_token(self) -> str:
        """The configured token (unless it was found dead)."""
        token = self.token()
        self.paused.check(token)
        return token

    def refresh(self, stale: str) -> str:
        """Nothing to refresh: a refused long-lived token is expired or revoked."""
        raise AuthError("the long-lived token was refused (401): expired or revoked")

    def pause(self, reason: str) -> TransientError:
        """Pause the tenant until another token is configured."""
        return self.paused.set(self.token(), reason)
