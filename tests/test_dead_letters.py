"""A CRM outage delays, never drops: after the last retry an event is a dead letter that
`bridge failed` lists with the CRM's error and `bridge replay` runs again, once."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from tests.bitrix24_env import TEST_CONFIG, Bridge, deal


@pytest.fixture
def env(bridge: Bridge, journal_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's own runtime on the test's configuration, journal and Redis."""
    monkeypatch.setenv("BRIDGE_CONFIG", str(TEST_CONFIG))
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    monkeypatch.setenv("REDIS_URL", redis_url)


def test_a_dead_letter_is_listed_and_replayed_once(bridge: Bridge, env: None) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.fail_next("tasks.task.add", times=4)  # every retry of the batch refused
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    assert bridge.sandbox.tasks_for(f"D_{deal_id}") == []

    listed = CliRunner().invoke(cli, ["failed", "--tenant", "remarka"])
    assert listed.exit_code == 0, listed.output
    assert f"deal {deal_id}: gave up after 4 attempts: " in listed.output
    assert "QUERY_LIMIT_EXCEEDED" in listed.output

    replayed = CliRunner().invoke(cli, ["replay", "--tenant", "remarka"])
    assert replayed.exit_code == 0, replayed.output
    assert "1 event(s) put back" in replayed.output
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1
    assert "0 failed event(s)" in CliRunner().invoke(cli, ["failed"]).output
    CliRunner().invoke(cli, ["replay", "--tenant", "remarka"])  # nothing left to replay
    bridge.work()
    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 1


def test_replay_needs_something_to_replay(env: None) -> None:
    result = CliRunner().invoke(cli, ["replay"])
    assert result.exit_code == 2
    assert "name event ids, or --tenant" in result.output
