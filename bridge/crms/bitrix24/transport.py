"""Bitrix24 REST under fast-bitrix24: our transport, one kept-alive HTTP session per thread.

fast-bitrix24 builds requests, batches and pages; under it sits our own thin transport so that
(a) every request first takes a slot from the rate limiter shared by all workers in Redis, (b)
an HTTP error, a timeout or a refused connection leaves as a typed error and is never retried
inside the library (its retries of timeouts and 5xx took 78 s per attempt with a 5 s timeout,
past any job's bound, and could send a write twice: the worker retries instead, and
idempotency keys guard the writes), (c) no exception text carries the webhook URL, whose path
is the secret, and (d) each thread keeps one event loop and one aiohttp session open across
calls, so a batch of events costs no new TCP connection.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import warnings
from collections.abc import Coroutine
from typing import Any

import aiohttp
from fast_bitrix24 import BitrixAsync

from bridge.crms.connector import READ_RETRY_DELAYS
from bridge.errors import AuthError, CredentialsExpired, NoAnswer, PermanentError, TransientError
from bridge.masking import redact

TRANSIENT_CODES = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT"}
READS = (".get", ".list", ".fields")
"""Methods that change nothing (``crm.deal.get``, ``tasks.task.list``...): asked again at once
after a transient failure; every other method is a write, never sent twice by the transport."""
NO_ANSWER = 0  # the "status" of a request that got no HTTP answer (timeout, refused)


class Bitrix24Error(Exception):
    """Carries a Bitrix24 error (status, body) out of fast-bitrix24 without its URL."""


class Rest:
    """Calls to one portal's incoming webhook.

    Raises (from every call):
        TransientError: rate limit, operating limit, 5xx; :class:`NoAnswer` for a timeout or
            a connection failure.
        CredentialsExpired: the portal says the token expired (retried; an admin is alerted).
        AuthError: the webhook was refused (401).
        PermanentError: any other error (not found, access denied, bad params).
    """

    def __init__(self, webhook: str, limiter: Any, timeout: float, *, patient: bool = True) -> None:
        self.webhook, self.limiter, self.timeout = webhook, limiter, timeout
        # a person waiting on the answer (dry-run) gets the first one: no read asked again
        self.read_retry_delays = READ_RETRY_DELAYS if patient else ()
        self._local = threading.local()

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One REST call; returns its ``result``."""
        return self._run(self._call(method, params))

    def get_all(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a list method: the first page, then the rest as ``batch`` calls."""
        return self._run(self._call(method, params, every=True))

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coroutine)

    def _transport(self) -> _Transport:
        transport = getattr(self._local, "transport", None)
        if transport is None or transport.closed:
            transport = self._local.transport = _Transport(
                self.limiter, self.timeout, self.read_retry_delays
            )
            loop = self._local.loop
            # close the kept-alive session when the process ends, not at garbage collection
            atexit.register(lambda: loop.is_closed() or loop.run_until_complete(transport.close()))
        return transport

    async def _call(self, method: str, params: dict[str, Any], every: bool = False) -> Any:
        transport = self._transport()
        try:
            client = BitrixAsync(self.webhook, verbose=False, client=transport.session)
            # the constructor type-checks for a real ClientSession; requests go through ours
            client.srh.session = transport
            if every:
                with warnings.catch_warnings():
                    # fast-bitrix24 1.8.14 upper-cases the params it checks, then looks for a
                    # lower-case "filter": it warns on every filtered select of "*"
                    warnings.filterwarnings("ignore", "You are selecting all fields")
                    return await client.get_all(method, params)
            envelope = await client.call(method, params, raw=True)
        except Bitrix24Error as exc:
            raise classify(exc.args[0], exc.args[1], method) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NoAnswer(f"{method}: {NoAnswer.why(exc, self.timeout)}") from None
        except RuntimeError as exc:
            raise TransientError(f"{method}: {type(exc).__name__}: {redact(exc)}") from None
        if isinstance(envelope, dict) and "error" in envelope:
            raise classify(200, envelope, method)
        return envelope.get("result") if isinstance(envelope, dict) else envelope


class _Transport:
    """Stands in for the ``aiohttp.ClientSession`` fast-bitrix24 accepts as ``client``.

    fast-bitrix24 only calls ``post(url=, json=, ssl=)`` as an async context manager and reads
    ``closed``. Errors leave here as :class:`Bitrix24Error`, which the library does not retry.
    """

    def __init__(self, limiter: Any, timeout: float, read_retry_delays: tuple[float, ...]) -> None:
        self.limiter, self.timeout = limiter, timeout
        self.read_retry_delays = read_retry_delays
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    @property
    def closed(self) -> bool:
        return self.session.closed

    def post(self, url: str, json: Any = None, ssl: Any = True) -> _Post:
        return _Post(self, url, json, ssl)

    async def close(self) -> None:
        await self.session.close()


class _Post:
    def __init__(self, transport: _Transport, url: str, body: Any, ssl: Any) -> None:
        self.transport, self.url, self.body, self.ssl = transport, url, body, ssl
        self.response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        reads = _reads_only(self.url, self.body)
        delays = self.transport.read_retry_delays if reads else ()
        for delay in (*delays, None):
            try:
                return await self._send()
            except Bitrix24Error as exc:
                if delay is None or not isinstance(classify(*exc.args, ""), TransientError):
                    raise
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self) -> aiohttp.ClientResponse:
        if self.transport.limiter is not None:
            await self.transport.limiter.acquire_async()
        try:
            self.response = await self.transport.session.post(
                self.url, json=self.body, ssl=self.ssl
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            # a write that timed out may have been done: the worker's retry looks first
            why = NoAnswer.why(exc, self.transport.timeout)
            raise Bitrix24Error(NO_ANSWER, {"error": "", "no_answer": why}) from None
        if self.response.status >= 400:
            text = await self.response.text()
            self.response.release()
            raise Bitrix24Error(self.response.status, _json_or_text(text))
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        if self.response is not None:
            self.response.release()


def _reads_only(url: str, body: Any) -> bool:
    """Does the request only read: a read method, or a ``batch`` of read commands only?"""
    method = url.rstrip("/").rsplit("/", 1)[-1]
    if method != "batch":
        return method.endswith(READS)
    commands = (body or {}).get("cmd") if isinstance(body, dict) else None
    if not isinstance(commands, dict):
        return False
    names = [str(c).split("?", 1)[0] for c in commands.values()]
    return bool(names) and all(name.endswith(READS) for name in names)


def _json_or_text(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
        return body if isinstance(body, dict) else {"error_description": text[:200]}
    except ValueError:
        return {"error": "", "error_description": text[:200]}


def classify(status: int, body: dict[str, Any], method: str) -> Exception:
    """Bitrix24 errors by HTTP status plus code plus description (D:_includes/system-errors.md)."""
    if status == NO_ANSWER and "no_answer" in body:
        return NoAnswer(f"{method}: {body['no_answer']}")
    code = str(body.get("error") or "")
    text = f"{method}: HTTP {status or '-'} {code or '-'}: "
    text += redact(body.get("error_description", ""))
    if code in TRANSIENT_CODES or status >= 500 or status in (429, NO_ANSWER):
        return TransientError(text)
    if code == "expired_token":
        # an OAuth token ran out: refreshing or re-installing helps, dropping never does
        return CredentialsExpired(f"{text}; renew the portal's credentials")
    if status == 401 or code in ("NO_AUTH_FOUND", "INVALID_CREDENTIALS"):
        return AuthError(text)
    return PermanentError(text)
