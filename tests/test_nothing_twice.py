"""Nothing twice: a comment made by an attempt that died before journaling it is found (like a
task), and a write the record already holds is not sent (an echo of our own write ends there)."""

from __future__ import annotations

from datetime import timedelta

from bridge import clock
from bridge.actions import AddComment, MoveStage, Reassign, UpdateFields
from bridge.execute import already_so
from bridge.models import Action, Record, RecordRef
from tests.amocrm_env import MEETING, AmoBridge, lead
from tests.bitrix24_env import ROOT, Bridge, deal

TEXT = "Клиент выбрал другого подрядчика — уточнить причину"


def comment(ref: RecordRef) -> Action:
    return Action("k" * 32, "r", ref, AddComment(TEXT))


def test_a_bitrix24_comment_of_a_dead_attempt_is_found_by_its_text_and_time(
    bridge: Bridge,
) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    conn = bridge.runtime.connector(bridge.runtime.tenant("remarka"))
    record = conn.fetch(RecordRef("deal", str(deal_id)))
    claimed = clock.utcnow() - timedelta(seconds=5)
    assert conn.find_done(record, comment(record.ref), claimed) is None
    bridge.sandbox.store.add_comment("deal", deal_id, TEXT, by_user=1)  # made, then the crash
    found = conn.find_done(record, comment(record.ref), claimed)
    assert found is not None and found["comment_id"]
    # the same text from long before the claim is another comment, not this action's
    assert conn.find_done(record, comment(record.ref), claimed + timedelta(hours=1)) is None


def test_an_amocrm_note_of_a_dead_attempt_is_found(amo: AmoBridge) -> None:
    lead_id = amo.sandbox.add_lead(lead("Ремонт кухни", MEETING))
    conn = amo.connector()
    record = conn.fetch(RecordRef("deal", str(lead_id)))
    claimed = clock.utcnow() - timedelta(seconds=5)
    action = comment(record.ref)
    assert conn.find_done(record, action, claimed) is None
    conn.execute(record, [action])  # the note is made; the journal never hears of it
    assert conn.find_done(record, action, claimed) is not None


def test_a_write_the_record_holds_is_skipped() -> None:
    record = Record(
        "deal",
        "7",
        "amocrm",
        stage="estimate",
        responsible="5001",
        amount=7.0,
        fields={"returning_client": "yes"},
    )
    ref = record.ref
    assert already_so(record, Action("a", "r", ref, UpdateFields({"returning_client": "yes"})))
    assert already_so(record, Action("b", "r", ref, UpdateFields({"amount": "7"})))
    assert not already_so(record, Action("c", "r", ref, UpdateFields({"returning_client": "no"})))
    assert already_so(record, Action("d", "r", ref, MoveStage("estimate")))
    assert not already_so(record, Action("e", "r", ref, MoveStage("contract")))
    assert already_so(record, Action("f", "r", ref, Reassign("5001")))
    assert not already_so(record, Action("g", "r", ref, AddComment("x")))


def test_an_echo_of_our_own_field_write_is_not_answered_with_another(make_bridge) -> None:
    bridge = make_bridge(ROOT / "tests" / "fixtures" / "echo.yaml")
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"TITLE": "Ремонт кухни, 12 м²"})  # a manager's edit
    bridge.settle()  # the bridge writes the goal; the portal echoes it; and again...
    updates = [r for r in bridge.sandbox.requests_log if r["method"] == "crm.deal.update"]
    assert len(updates) == 1  # one write; its echo finds the goal already set
    assert bridge.sandbox.deals[deal_id]["UF_CRM_1700000003"] == "Согласовать замер"
