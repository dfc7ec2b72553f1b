"""The journal on SQLite and on PostgreSQL: events, keys that refuse a second action, stays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.journal import Base, Journal


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request: pytest.FixtureRequest, journal_url: str) -> Journal:
    url = journal_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    journal = Journal(url)
    Base.metadata.drop_all(journal.engine)  # the PostgreSQL database lives for the session
    Base.metadata.create_all(journal.engine)
    return journal


def test_a_known_dedup_key_returns_the_first_event(journal: Journal) -> None:
    first, created = journal.record_event(
        tenant="t", crm="bitrix24", status="queued", dedup_key="k"
    )
    again, created_again = journal.record_event(
        tenant="t", crm="bitrix24", status="queued", dedup_key="k"
    )
    assert (created, created_again) == (True, False)
    assert again == first


def test_an_action_key_is_claimed_once(journal: Journal) -> None:
    event_id, _ = journal.record_event(tenant="t", crm="bitrix24", status="queued")
    values = dict(
        event_id=event_id,
        tenant="t",
        rule="r",
        kind="create_task",
        record_kind="deal",
        record_id="1",
    )
    row, created = journal.claim_action("key-1", **values)
    journal.settle_action("key-1", "done", {"task_id": "7"})
    again, created_again = journal.claim_action("key-1", **values)
    assert (created, created_again) == (True, False)
    assert (again.status, again.result) == ("done", {"task_id": "7"})


def test_a_new_stage_opens_a_new_stay(journal: Journal) -> None:
    at = datetime(2025, 10, 22, 9, 0, tzinfo=UTC)
    first = journal.store_snapshot("t", "deal", "1", "meeting", {}, at)
    same = journal.store_snapshot("t", "deal", "1", "meeting", {"x": 1}, at)
    moved = journal.store_snapshot("t", "deal", "1", "lost", {}, at)
    assert (first.stay, same.stay, moved.stay) == (1, 1, 3)
    assert journal.snapshot("t", "deal", "1").version == 3


def test_recent_lists_events_with_their_decisions(journal: Journal) -> None:
    event_id, _ = journal.record_event(tenant="t", crm="bitrix24", status="queued")
    journal.add_decisions(event_id, [("rule-1", "fired", "missing: x")])
    journal.finish_event(event_id, "processed", "1 action(s) done")
    [entry] = journal.recent(5)
    assert entry["event"].status == "processed"
    assert [(d.rule, d.verdict) for d in entry["decisions"]] == [("rule-1", "fired")]
