"""HTTP to one amoCRM account: our own thin ``requests`` client (docs/dependencies.md says why).

Every request (API and OAuth alike) first takes a slot from the rate limiter that all workers
share in Redis, carries a timeout, and leaves as a typed error: amoCRM documents four error
body shapes plus HTML pages for 403/429 (reference §3.3), so nothing here trusts a body to be
JSON. A 429 is honoured inside the call (``retry_after``, up to a small cap) before the work is
handed back to rq: the bridge must not hammer an account that is close to an API block.

D: = https://www.amocrm.ru/developers/content/ (shared/reference/amocrm.md quotes each page).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import requests

from bridge.crms.connector import READ_RETRY_DELAYS
from bridge.errors import AuthError, NoAnswer, PermanentError, TransientError
from bridge.masking import redact
from bridge.ratelimit import RateLimiter, RateLimitTimeout

log = logging.getLogger(__name__)

# A 429 asks to wait `retry_after` seconds (Kommo's status-code page shows 300): waits up to
# this cap are slept inside the call, longer ones go back to rq's retry intervals.
RETRY_AFTER_CAP = 5.0
RETRY_AFTER_DEFAULT = 1.0  # a 429 may come as an HTML page without retry_after (api-php#517)
ATTEMPTS_ON_429 = 3
SLOT_WAIT = 30.0  # seconds a request may wait for a rate-limit slot
USER_AGENT = "crm-bridge/amocrm"


class TokenSource(Protocol):
    """Where the connector gets its bearer token (OAuth pair or long-lived token)."""

    def access_token(self) -> str:
        """A token to send now (refreshed ahead of expiry where that is possible)."""
        ...

    def refresh(self, stale: str) -> str:
        """A new token after ``stale`` was refused with 401."""
        ...

    def pause(self, reason: str) -> TransientError:
        """Stop the tenant's work until its credentials change; returns the error to raise."""
        ...


class Transport:
    """One account's address, a session, the shared rate limit and the timeout."""

    def __init__(
        self,
        base_url: str,
        limiter: RateLimiter | None,
        timeout: float,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        waits_on_429: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.sleep = sleep
        self.attempts_on_429 = ATTEMPTS_ON_429 if waits_on_429 else 0
        # a person waiting on the answer gets the first one, whatever it is
        self.read_retry_delays = READ_RETRY_DELAYS if waits_on_429 else ()

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Any = None,
        body: Any = None,
    ) -> requests.Response:
        """One exchange; a 429 is waited out (``retry_after`` ≤ the cap) and sent again; a GET
        that failed on the way or with a 5xx is asked again after each of
        :data:`READ_RETRY_DELAYS` (a write never is: find_done looks before a repeat).

        Raises:
            TransientError: no slot in time, a network failure or timeout, 429 past the cap.
        """
        delays = self.read_retry_delays if method == "GET" else ()
        for delay in (*delays, None):
            try:
                response = self._send_waiting_out_429(method, path, token, params, body)
            except NoAnswer:
                if delay is None:
                    raise
            else:
                if response.status_code < 500 or delay is None:
                    return response
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_waiting_out_429(
        self, method: str, path: str, token: str | None, params: Any, body: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(self.attempts_on_429 + 1):
            self._slot(path)
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                # a POST that timed out may have been done: find_done looks before a repeat
                raise NoAnswer(f"{method} {path}: {NoAnswer.why(exc, self.timeout)}") from None
            if response.status_code != 429:
                return response
            wait = retry_after(response)
            if wait > RETRY_AFTER_CAP or attempt == self.attempts_on_429:
                raise TransientError(f"{method} {path}: HTTP 429, retry after {wait:g}s")
            log.info("amoCRM answered 429 to %s %s; waiting %.1fs", method, path, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _slot(self, path: str) -> None:
        if self.limiter is None:
            return
        try:
            self.limiter.acquire(timeout=SLOT_WAIT)
        except RateLimitTimeout:
            raise TransientError(f"{path}: no rate-limit slot within {SLOT_WAIT:g}s") from None


class Api:
    """API v4 calls with a bearer token: 401 → one refresh and one retry, 204 → ``None``."""

    def __init__(self, transport: Transport, tokens: TokenSource) -> None:
        self.transport = transport
        self.tokens = tokens

    def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        """One API call; returns the JSON body, or ``None`` for 204 (nothing found).

        Raises:
            TenantPaused: the credentials are dead (refresh revoked, token refused after one).
            TransientError: 429 past the cap, 5xx, network, timeout.
            PermanentError: 400/402/403/404/422... (D:crm_platform/error-codes).
        """
        try:
            token = self.tokens.access_token()
            response = self.transport.send(method, path, token=token, params=params, body=body)
            if response.status_code == 401:
                # D:oauth/oauth: the access token lives a day and may be revoked early;
                # refresh once (another worker may already have) and try once more
                token = self.tokens.refresh(stale=token)
                response = self.transport.send(method, path, token=token, params=params, body=body)
            if response.status_code == 204:
                return None
            if response.status_code >= 300:
                raise classify(response.status_code, body_of(response), f"{method} {path}")
            return response.json() if response.content else None
        except AuthError as exc:
            raise self.tokens.pause(str(exc)) from None

    def pages(self, path: str, params: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        """Every item of a list, page by page along ``_links.next`` (D:crm_platform/leads-api).

        A 204 is an empty list. The next page is asked of our own account's address even if
        the link names another host: the token must never leave the account.
        """
        query: Any = params
        while True:
            body = self.call("GET", path, params=query)
            if not body:
                return
            yield from (body.get("_embedded") or {}).get(key) or []
            href = ((body.get("_links") or {}).get("next") or {}).get("href")
            if not href:
                return
            link = urlsplit(href)
            path, query = link.path, parse_qsl(link.query, keep_blank_values=True)


def retry_after(response: requests.Response) -> float:
    """Seconds a 429 asks to wait: the body's ``retry_after``, the header, or a default."""
    body = body_of(response)
    for raw in (body.get("retry_after"), response.headers.get("Retry-After")):
        try:
            return max(float(raw), 0.0)
        except (TypeError, ValueError):
            continue
    return RETRY_AFTER_DEFAULT


def body_of(response: requests.Response) -> dict[str, Any]:
    """The JSON object of an answer; ``{"html": ...}`` for a page (403/429 from nginx)."""
    try:
        body = response.json()
    except ValueError:
        return {"html": response.text[:120]}
    return body if isinstance(body, dict) else {"items": body}


def classify(status: int, body: dict[str, Any], what: str) -> Exception:
    """An error answer as a typed error (D:crm_platform/error-codes, reference §3.2-3.3).

    Localised ``detail`` texts are shown, never matched on.
    """
    text = f"{what}: HTTP {status}: {describe(body)}"
    if status == 429 or status >= 500:
        return TransientError(text)
    if status == 401:
        return AuthError(text)
    if status == 402:
        return PermanentError(f"{what}: HTTP 402: account unpaid")
    if status == 403:
        return PermanentError(f"{text} (rights, IP restriction or an API-blocked account)")
    return PermanentError(text)


def describe(body: dict[str, Any]) -> str:
    """One line of an error body: title/detail/hint, validation paths, errors by id."""
    if "html" in body:
        return "an HTML page"
    parts = [str(body[k]) for k in ("title", "detail", "hint") if body.get(k)]
    for item in body.get("validation-errors") or []:
        for error in item.get("errors") or []:
            parts.append(f"{error.get('path')}: {error.get('code')}")
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    return redact("; ".join(parts) or "no details")[:500]
