"""The journal on SQLite and on PostgreSQL: events, keys that refuse a second action, stays."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from bridge.errors import SchemaError
from bridge.journal import (
    FIRST_REVISION,
    Base,
    Journal,
    Settled,
    Snapshot,
    _alembic_config,
    head,
    migrate,
)
from bridge.models import Decision, Record


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request: pytest.FixtureRequest, journal_url: str) -> Journal:
    url = journal_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    journal = Journal(url)
    with journal.engine.begin() as conn:  # the PostgreSQL database lives for the session
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
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
    journal.add_decisions(event_id, [Decision("rule-1", "fired", "missing: x", "missing")])
    journal.finish_event(event_id, "processed", "1 action(s) done")
    [entry] = journal.recent(5)
    assert entry["event"].status == "processed"
    assert [(d.rule, d.verdict) for d in entry["decisions"]] == [("rule-1", "fired")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_make_the_schema_the_models_describe(
    request: pytest.FixtureRequest, backend: str, journal_url: str
) -> None:
    url = journal_url if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_a_process_on_an_unmigrated_journal_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"has no schema.*run `bridge migrate`"):
        Journal(f"sqlite:///{tmp_path / 'new.db'}")


def test_a_journal_made_before_migrations_keeps_its_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the tables as create_all made them: revision 0001, unstamped
        command.upgrade(_alembic_config(conn), FIRST_REVISION)
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql(
            "INSERT INTO events (tenant, crm, source, type, kind, record_id, status, reason,"
            " payload, received_at) VALUES ('remarka', 'bitrix24', '', '', 'deal', '7',"
            " 'processed', '', '{}', '2025-10-01 10:00:00')"
        )
    engine.dispose()
    assert migrate(url) == head()
    assert Journal(url).event(1).record_id == "7"


def _action(journal: Journal, key: str, record: tuple[str, str], stay: str, **values: str) -> None:
    values = {"tenant": "t", "kind": "send_email", **values}
    event_id, _ = journal.record_event(tenant=values["tenant"], crm="b", status="queued")
    journal.claim_action(
        key,
        event_id=event_id,
        rule="r",
        record_kind=record[0],
        record_id=record[1],
        stay=stay,
        **values,
    )


def test_a_batch_reads_each_records_past_as_its_own(journal: Journal) -> None:
    at = datetime(2025, 10, 22, 9, 0, tzinfo=UTC)
    for key, record, stay, template in (
        ("e1", ("deal", "1"), "1", "welcome"),
        ("e2", ("deal", "1"), "3", "reminder"),
        ("e3", ("deal", "2"), "1", "welcome"),
        ("e4", ("lead", "1"), "1", "lead-only"),
    ):
        _action(journal, key, record, stay)
        journal.settle_action(key, "done", {"template": template})
    _action(journal, "e5", ("deal", "1"), "1")  # still pending: not sent
    _action(journal, "e6", ("deal", "1"), "1", tenant="other")
    journal.settle_action("e6", "done", {"template": "other-tenant"})
    journal.record_changes("t", "deal", "1", ["stage", "amount", "stage"], at, client="c1")
    journal.record_changes("t", "deal", "3", ["stage"], at, client="c1")
    journal.record_changes("t", "lead", "1", ["stage"], at, client="c2")
    journal.record_changes("other", "deal", "1", ["stage"], at, client="c1")

    past = journal.history("t", [("deal", "1"), ("deal", "2"), ("lead", "9")], ["c1", "c9"])

    assert past.emails_sent("deal", "1", "1") == {"welcome"}
    assert past.emails_sent("deal", "1", "3") == {"reminder"}
    assert past.emails_sent("deal", "2", "1") == {"welcome"}
    assert past.emails_sent("lead", "1", "1") == frozenset()  # not asked for
    assert past.change_counts("deal", "1") == {"stage": 2, "amount": 1}
    assert past.change_counts("deal", "2") == {}
    assert past.client_change_counts("c1") == {"stage": 3, "amount": 1}
    assert past.client_change_counts("c9") == {}
    # the one-record questions give the same answers
    assert journal.emails_sent("t", "deal", "1", "1") == {"welcome"}
    assert journal.change_counts("t", "deal", "1") == {"stage": 2, "amount": 1}
    assert journal.client_change_counts("t", "c1") == {"stage": 3, "amount": 1}


def test_settling_a_batch_counts_attempts_and_keeps_an_earlier_result(journal: Journal) -> None:
    for key in ("a", "b"):
        _action(journal, key, ("deal", "1"), "1", kind="create_task")
    journal.settle_many(
        [Settled("a", "done", {"task_id": "7"}), Settled("b", "pending", None, "503")]
    )
    journal.settle_many([Settled("b", "done", {"task_id": "8"}), Settled("a", "done")])
    rows = {key: journal.claim_action(key)[0] for key in ("a", "b")}
    assert {k: (r.status, r.result, r.attempts) for k, r in rows.items()} == {
        "a": ("done", {"task_id": "7"}, 2),
        "b": ("done", {"task_id": "8"}, 2),
    }
    assert rows["b"].error == ""


def test_completing_a_batch_stores_snapshots_changes_and_verdicts(journal: Journal) -> None:
    at = datetime(2025, 10, 22, 9, 0, tzinfo=UTC)
    entries = [
        {"entry": f"1-{n}", "crm": "b", "kind": "deal", "record_id": str(n), "status": "processing"}
        for n in (1, 2)
    ]
    first, second = journal.journal_entries("t", entries)
    assert [r.entry for r in journal.journal_entries("t", entries)] == ["1-1", "1-2"]  # once
    journal.store_snapshot("t", "deal", "1", "meeting", {"old": True}, at)
    journal.add_decisions_many([(first.id, Decision("r", "fired", "x", "missing"), None)])
    journal.complete(
        "t",
        {
            ("deal", "1"): Snapshot(2, 1, "meeting", at, {"new": True}),
            ("deal", "2"): Snapshot(1, 1, "lost", at, {"id": "2"}),
        },
        [("deal", "1", "amount", at, "c1")],
        [(first.id, "processed", "1 action(s) done"), (second.id, "failed", "gone")],
    )
    one, two = journal.snapshot("t", "deal", "1"), journal.snapshot("t", "deal", "2")
    assert (one.version, one.data, two.stage, two.data) == (2, {"new": True}, "lost", {"id": "2"})
    assert journal.change_counts("t", "deal", "1") == {"amount": 1}
    events = {e["event"].id: e for e in journal.recent(5)}
    assert (events[first.id]["event"].status, events[second.id]["event"].reason) == (
        "processed",
        "gone",
    )
    assert [d.verdict for d in events[first.id]["decisions"]] == ["fired"]


PHONE, EMAIL = "+7 912 345-67-89", "ivan.petrov@mail.ru"


def _raw(journal: Journal, query: str) -> str:
    """Every value the rows of a query hold, as the database keeps them."""
    with journal.engine.connect() as conn:
        return repr(conn.exec_driver_sql(query).all())


def test_phones_and_emails_are_masked_in_every_text_the_journal_keeps(journal: Journal) -> None:
    said = f"client {PHONE}, {EMAIL}"
    event_id, _ = journal.record_event(
        tenant="t", crm="bitrix24", status="rejected", reason=said, payload={"note": said}
    )
    journal.add_decisions(event_id, [Decision("r", "fired", said, "missing")])
    values = dict(tenant="t", rule="r", kind="create_task", record_kind="deal", record_id="1")
    journal.claim_actions([{"key": "k1", "event_id": event_id, "summary": said, **values}])
    journal.settle_many([Settled("k1", "failed", {"to": EMAIL}, f"550 {EMAIL} unknown")])
    journal.store_snapshot("t", "deal", "1", "NEW", {"title": said}, datetime.now(UTC))
    journal.finish_event(event_id, "failed", said)
    for table in ("events", "decisions", "actions", "snapshots"):
        kept = _raw(journal, f"SELECT * FROM {table}")
        assert "345-67" not in kept and "ivan.petrov" not in kept, table
        assert "+7*********89" in kept or "i***@mail.ru" in kept, table


def test_a_masked_snapshot_still_tells_what_changed(journal: Journal) -> None:
    from bridge.pipeline import changed_fields, previous_of

    deal = {"kind": "deal", "id": "1", "crm": "bitrix24", "title": f"Кухня {PHONE}"}
    before = Record(**deal, fields={"email": EMAIL})
    journal.store_snapshot("t", "deal", "1", "NEW", before.to_dict(), datetime.now(UTC))
    snap = journal.snapshot("t", "deal", "1")
    assert PHONE not in repr(snap.data)
    assert changed_fields(previous_of(snap, before), before) == []
    moved = Record(**deal, fields={"email": "a@b.ru"})
    assert changed_fields(previous_of(snap, moved), moved) == ["email"]
