"""``bridge dry-run --id``: the record read from the CRM, or at once one sentence saying
which CRM failed how and what to check (no traceback, no waiting out retries)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from bridge.cli import cli
from bridge.crms.connector import QUICK_TIMEOUT
from tests.amocrm_env import LOST, MEETING, AmoBridge, lead
from tests.bitrix24_env import TEST_CONFIG, Bridge, deal
from tests.onec_env import OneCBridge


def dry_run(*args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["dry-run", "--tenant", "remarka", *args])
    return result, time.monotonic() - started


def one_error(result: Result) -> str:
    """The command failed with one line (no traceback)."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_record_is_read_from_bitrix24(
    make_bridge: Callable[..., Bridge], journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_bridge(subscribe=False)
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    # crm.deal.get (https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-get.html)
    deal_id = env.sandbox.add_deal(deal("Кухня", "C1:LOSE"))
    result, _ = dry_run("--config", str(TEST_CONFIG), "--id", str(deal_id))
    assert result.exit_code == 0, result.output
    assert "rule refusal-needs-reason: fired (missing: refusal_reason)" in result.output


def test_a_portal_refusing_the_connection_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/rest/1/k/")
    result, took = dry_run("--config", str(TEST_CONFIG), "--id", "42")
    line = one_error(result)
    assert line.startswith("error: Bitrix24 did not answer when asked for deal 42 (")
    assert "Connection refused" in line
    assert "check the portal's address in $REMARKA_B24_WEBHOOK_URL" in line
    assert "/rest/1/k/" not in line  # the webhook's path is its secret
    assert took < QUICK_TIMEOUT


def test_a_portal_refusing_the_webhook_says_which_to_check(
    make_bridge: Callable[..., Bridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_bridge(subscribe=False)
    # a webhook deleted on the portal: 401 NO_AUTH_FOUND (D:_includes/system-errors.md)
    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", env.sandbox.webhook_url.replace("/1/", "/2/"))
    result, _ = dry_run("--config", str(TEST_CONFIG), "--id", "42")
    line = one_error(result)
    assert line.startswith("error: Bitrix24 refused the bridge's credentials (")
    assert "HTTP 401 NO_AUTH_FOUND" in line
    assert "check that the incoming webhook in $REMARKA_B24_WEBHOOK_URL still exists" in line


def test_a_hung_amocrm_account_is_given_up_after_the_quick_timeout(
    make_amo_bridge: Callable[..., AmoBridge],
) -> None:
    amo = make_amo_bridge()
    lead_id = amo.sandbox.add_lead(lead("Кухня", MEETING))
    amo.sandbox.stalled.set()  # the account stops answering
    try:
        result, took = dry_run("--config", str(amo.runtime.settings.path), "--id", str(lead_id))
    finally:
        amo.sandbox.stalled.clear()
    line = one_error(result)
    assert f"amoCRM did not answer when asked for deal {lead_id} (" in line
    assert f"no answer within {QUICK_TIMEOUT:g} s" in line
    assert f"check base_url ({amo.sandbox.base_url})" in line
    assert took < QUICK_TIMEOUT + 3  # not the connection's 20 s


def test_a_rate_limit_is_reported_not_waited_out(
    make_amo_bridge: Callable[..., AmoBridge], journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    amo = make_amo_bridge()
    lead_id = amo.sandbox.add_lead(lead("Кухня", LOST))
    amo.sandbox.retry_after = 2  # a worker would wait 2 s, three times over
    # 429 with retry_after (https://www.amocrm.ru/developers/content/crm_platform/error-codes)
    amo.sandbox.fail_next("/api/v4/leads", times=4, status=429)
    result, took = dry_run("--config", str(amo.runtime.settings.path), "--id", str(lead_id))
    line = one_error(result)
    assert line.startswith("error: amoCRM could not answer now (")
    assert "HTTP 429, retry after 2s" in line
    assert took < 2


def test_amocrm_without_the_bridges_redis_names_it(
    make_amo_bridge: Callable[..., AmoBridge], monkeypatch: pytest.MonkeyPatch
) -> None:
    amo = make_amo_bridge()
    port = closed_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    result, took = dry_run("--config", str(amo.runtime.settings.path), "--id", "1")
    line = one_error(result)
    assert f"error: the bridge's Redis at 127.0.0.1:{port} did not answer" in line
    assert "amoCRM's tokens live there" in line
    assert took < QUICK_TIMEOUT


def test_a_1c_order_not_yet_uploaded_is_explained_as_such(
    onec: OneCBridge, journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without OData the bridge knows only what 1C uploaded (the exchange with site):
    # the login is not what to check, the id and the next exchange are
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    config = str(onec.runtime.settings.path)
    result = CliRunner().invoke(
        cli, ["dry-run", "--config", config, "--tenant", "fireworks-1c", "--id", "777"]
    )
    line = one_error(result)
    assert "order 777 was never uploaded by 1C" in line
    assert "without OData the bridge knows only the orders 1C has uploaded" in line
    assert "login" not in line
