"""amoCRM credentials against the sandbox's OAuth server, with a real Redis.

https://www.amocrm.ru/developers/content/oauth/step-by-step and .../oauth/oauth (reference
§2.11): a code gives an access token (a JWT with ``exp``) and a refresh token that works once;
reusing one answers 401 ``"hint": "Token has been revoked"`` (amocrm/amocrm-api-php#123).
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from pydantic import ValidationError

from bridge.cli import cli
from bridge.crms.amocrm import AmoCRMSettings
from bridge.crms.amocrm.auth import TokenPair, jwt_exp
from bridge.crms.amocrm.connector import AmoCRMConnector
from bridge.errors import TenantPaused, TransientError
from bridge.models import RecordRef
from bridge.ratelimit import RateLimiter
from tests.amocrm_env import MEETING, AmoBridge, lead


def worker_connector(amo: AmoBridge, redis_url: str) -> AmoCRMConnector:
    """A connector as another worker process has it: its own Redis client and limiter."""
    client = redis.Redis.from_url(redis_url)
    tenant = amo.runtime.tenant("remarka")
    limiter = RateLimiter(client, "amocrm:30000001", 6.3, 1)
    return AmoCRMConnector(tenant, limiter=limiter, shared=client)


def stored(amo: AmoBridge) -> TokenPair:
    pair = amo.connector().tokens.store.load()
    assert pair is not None
    return pair


def test_the_cli_exchanges_a_code_and_stores_the_pair(
    amo: AmoBridge, redis_url: str, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    before = stored(amo)
    config = str(amo.runtime.settings.path)
    code = amo.sandbox.issue_code()
    result = CliRunner().invoke(
        cli, ["amocrm-auth", code, "--tenant", "remarka", "--config", config]
    )
    assert result.exit_code == 0, result.output
    assert "tokens of remarka saved" in result.output
    assert stored(amo) != before
    assert amo.sandbox.oauth.refresh_token_live(stored(amo).refresh_token)
    again = CliRunner().invoke(
        cli, ["amocrm-auth", code, "--tenant", "remarka", "--config", config]
    )
    assert again.exit_code == 1
    assert "Authorization code has been revoked" in again.output  # a code works once


def test_the_token_is_refreshed_ahead_of_its_expiry(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    conn = amo.connector()
    expires = stored(amo).expires_at
    conn.tokens.clock = lambda: expires - 60  # within the 5-minute margin
    conn.fetch(RecordRef("deal", str(lead_id)))
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True]
    assert all(r["status"] != 401 for r in amo.sandbox.requests_log)


def test_two_workers_refreshing_at_once_refresh_once(amo: AmoBridge, redis_url: str) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    workers = [worker_connector(amo, redis_url) for _ in range(2)]
    amo.sandbox.expire_access_tokens()  # both hold a token the account now refuses
    start = threading.Barrier(len(workers))
    results: list[Any] = []

    def run(conn: AmoCRMConnector) -> None:
        start.wait()
        try:
            results.append(conn.fetch(RecordRef("deal", str(lead_id))).title)
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["Ремонт кухни", "Ремонт кухни"]
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True]  # one refresh, none revoked
    assert amo.sandbox.oauth.refresh_token_live(stored(amo).refresh_token)


def test_a_save_that_fails_once_is_retried_and_no_token_is_lost(
    amo: AmoBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    tokens = amo.connector().tokens
    save = tokens.store.save
    failures = iter([redis.ConnectionError("Redis went away")])

    def flaky(pair: TokenPair) -> None:
        error = next(failures, None)
        if error is not None:
            raise error  # the crash: amoCRM rotated the token, Redis did not take it
        save(pair)

    monkeypatch.setattr(tokens.store, "save", flaky)
    amo.sandbox.expire_access_tokens()
    amo.connector().fetch(RecordRef("deal", str(lead_id)))
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True]
    assert amo.sandbox.oauth.refresh_token_live(stored(amo).refresh_token)


def test_a_pair_redis_would_not_take_is_held_and_saved_before_use(
    amo: AmoBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    conn = amo.connector()
    save = conn.tokens.store.save
    monkeypatch.setattr(conn.tokens, "sleep", lambda _s: None)
    monkeypatch.setattr(conn.tokens.store, "save", _down)
    amo.sandbox.expire_access_tokens()
    with pytest.raises(TransientError, match="could not be saved"):
        conn.fetch(RecordRef("deal", str(lead_id)))
    monkeypatch.setattr(conn.tokens.store, "save", save)  # Redis is back
    assert conn.fetch(RecordRef("deal", str(lead_id))).title == "Ремонт кухни"
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True]  # no second refresh
    assert amo.sandbox.oauth.refresh_token_live(stored(amo).refresh_token)


def _down(pair: TokenPair) -> None:
    raise redis.ConnectionError("Redis went away")


def test_a_revoked_refresh_token_pauses_without_hammering(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    conn = amo.connector()
    amo.sandbox.oauth.exchange(  # someone else used our refresh token
        {
            "grant_type": "refresh_token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "refresh_token": stored(amo).refresh_token,
        }
    )
    amo.sandbox.expire_access_tokens()
    for _ in range(3):
        with pytest.raises(TenantPaused, match="Token has been revoked"):
            conn.fetch(RecordRef("deal", str(lead_id)))
    assert [e["ok"] for e in amo.sandbox.refresh_log] == [True, False]  # tried once
    conn.authorize(amo.sandbox.issue_code())  # new credentials resume the tenant
    assert conn.fetch(RecordRef("deal", str(lead_id))).title == "Ремонт кухни"


def test_a_long_lived_token_needs_no_refresh_and_pauses_when_refused(
    amo: AmoBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    tenant = amo.runtime.tenant("remarka")
    connection = {
        k: v for k, v in tenant.config.connection.items() if k not in ("client_id", "auth")
    }
    connection |= {"auth": "long_lived", "long_lived_token_env": "REMARKA_AMO_TOKEN"}
    monkeypatch.setattr(tenant.config, "connection", connection)
    monkeypatch.setenv("REMARKA_AMO_TOKEN", amo.sandbox.long_lived_token(days=30))
    conn = AmoCRMConnector(tenant, shared=amo.runtime.redis)
    ref = RecordRef("deal", str(lead_id))
    assert conn.fetch(ref).title == "Ремонт кухни"
    amo.sandbox.expire_access_tokens()  # revoked in the integration's settings
    with pytest.raises(TenantPaused, match="long-lived token"):
        conn.fetch(ref)
    assert amo.sandbox.refresh_log == []
    monkeypatch.setenv("REMARKA_AMO_TOKEN", amo.sandbox.long_lived_token(days=30))
    assert conn.fetch(ref).title == "Ремонт кухни"  # a new token resumes the tenant


def test_the_jwt_expiry_is_read_without_a_key() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": 1893456000}).encode()).rstrip(b"=")
    assert jwt_exp(f"e30.{claims.decode()}.sig") == 1893456000
    assert jwt_exp("not-a-jwt") is None
    pair = TokenPair.from_answer({"access_token": "x", "refresh_token": "y", "expires_in": 60}, 100)
    assert pair.expires_at == 160
    assert pair.fresh(now=100, margin=30) and not pair.fresh(now=140, margin=30)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_url": "https://example.amocrm.ru/api/v4"}, "account's address"),
        ({"base_url": "example"}, "account's address"),
        ({"client_id": None}, "needs client_id"),
        ({"auth": "long_lived"}, "needs long_lived_token_env"),
    ],
)
def test_settings_are_checked(change: dict[str, Any], message: str) -> None:
    good = {
        "base_url": "https://example.amocrm.ru/",
        "account_id": 1,
        "client_id": "id",
        "client_secret_env": "S",
        "redirect_uri": "https://bridge.example/oauth",
        "webhook_secret_env": "H",
    }
    assert AmoCRMSettings.model_validate(good).base_url == "https://example.amocrm.ru"
    with pytest.raises(ValidationError, match=message):
        AmoCRMSettings.model_validate(good | change)


def test_the_limiter_is_keyed_by_account_and_paced_under_the_limit(amo: AmoBridge) -> None:
    # built by the runtime from the tenant's settings: 7/s documented, 90% of it used
    limiter = amo.connector().transport.limiter
    assert limiter.key == "bridge:ratelimit:amocrm:30000001"
    assert limiter.rate == pytest.approx(6.3) and limiter.burst == 1
