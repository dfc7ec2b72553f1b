"""A template that does not fit a record fails its own action, permanently, with the reason in
the journal; the rule's and the event's other actions still act, and nothing is retried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from tests.bitrix24_env import ROOT, Bridge, deal

PACK = """\
version: 1
pack: broken-templates
rules:
  - id: too-long
    when: {kind: deal, stage_to: lost}
    then:
      - add_comment: {text: "{{ record.title * 100000 }}"}
      - create_task: {title: "Разберите отказ: {{ record.title }}", deadline: 2 working hours}
  - id: changes-the-record
    when: {kind: deal, stage_to: lost}
    then:
      # through a name of its own: `bridge validate` cannot follow it, the sandbox still refuses
      - add_comment:
          text: "{% set f = record.fields %}{{ f.update({'refusal_reason': 'взлом'}) }}"
  - id: empty-field
    when: {kind: deal, stage_to: lost}
    then:
      - create_task: {title: "Причина: {{ record.fields.refusal_reason.upper() }}"}
  - id: fine
    when: {kind: deal, stage_to: lost}
    then:
      - create_task: {title: "Позвоните клиенту: {{ record.title }}", deadline: 2 working hours}
"""


@pytest.fixture
def bridge(
    make_bridge: Callable[..., Bridge],
    tmp_path: Path,
    journal_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Bridge:
    """Remarka's portal with a pack whose templates fail on a lost deal; the CLI on it."""
    (tmp_path / "broken.yaml").write_text(PACK, encoding="utf-8")
    config = tmp_path / "bridge.yaml"
    config.write_text(
        (ROOT / "tests" / "fixtures" / "bridge.yaml")
        .read_text(encoding="utf-8")
        .replace("../../config/mappings/", f"{ROOT}/config/mappings/")
        .replace("../../config/regulations/remarka.yaml", str(tmp_path / "broken.yaml")),
        encoding="utf-8",
    )
    monkeypatch.setenv("BRIDGE_CONFIG", str(config))
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    return make_bridge(config)


def test_a_failing_template_fails_its_action_alone(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()

    titles = sorted(t["TITLE"] for t in bridge.sandbox.tasks_for(f"D_{deal_id}"))
    assert titles == ["Позвоните клиенту: Ремонт кухни", "Разберите отказ: Ремонт кухни"]
    assert bridge.sandbox.comments_for("deal", deal_id) == []

    event = bridge.runtime.journal.recent(1, "remarka")[0]["event"]
    out = CliRunner().invoke(cli, ["explain", str(event.id)]).output
    assert f"deal {deal_id}: processed - 2 action(s) done, 3 failed" in out
    assert (
        "add_comment [failed] not made: template refused: repeating a str 100,000 times would "
        "exceed the template size limit of 100,000 characters"
    ) in out
    assert (
        "add_comment [failed] not made: template refused: access to attribute 'update' of "
        "'dict' object is unsafe."
    ) in out
    assert (
        "create_task [failed] not made: template error: 'None' has no attribute 'upper'; the "
        "template names something this record does not have (`bridge validate` lists the names"
    ) in out
    assert "взлом" not in str(bridge.sandbox.store.deals[deal_id])


def test_a_failed_template_is_not_retried(bridge: Bridge) -> None:
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"TITLE": "Ремонт кухни и ванной"})  # same stay
    bridge.work()

    assert len(bridge.sandbox.tasks_for(f"D_{deal_id}")) == 2
    failed = CliRunner().invoke(cli, ["failed", "--tenant", "remarka"]).output
    assert "0 failed event(s)" in failed  # the event did what it could; nothing dead-lettered
    rows = [a for e in bridge.runtime.journal.recent(10, "remarka") for a in e["actions"]]
    assert sorted(a.status for a in rows) == ["done", "done", "failed", "failed", "failed"]
    assert all(a.attempts == 1 for a in rows if a.status == "failed")


def test_a_macro_calling_itself_fails_its_action_in_the_plan() -> None:
    from datetime import UTC, datetime

    from bridge.actions import AddComment, NotRendered
    from bridge.calendar import BusinessCalendar
    from bridge.config import parse_hours
    from bridge.models import Event, Record
    from bridge.regulations.engine import Context, evaluate
    from bridge.regulations.pack import Pack

    loop = "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"
    pack = Pack.model_validate(
        {
            "pack": "p",
            "rules": [
                {
                    "id": "r",
                    "then": [{"add_comment": {"text": loop}}, {"add_comment": {"text": "ok"}}],
                }
            ],
        }
    )
    now = datetime(2025, 11, 14, 10, tzinfo=UTC)
    calendar = BusinessCalendar("Europe/Moscow", parse_hours({"mon-fri": "09:00-18:00"}))
    record = Record("deal", "1", "bitrix24", title="x")
    event = Event("t", "bitrix24", "record.updated", record.ref, now)
    plan = evaluate(event, record, record, pack.rules, Context(now=now, calendar=calendar))
    assert [a.params for a in plan.actions] == [
        NotRendered(
            "add_comment", "template error: RecursionError: maximum recursion depth exceeded"
        ),
        AddComment("ok"),
    ]
