"""Template e-mail through the whole flow: a rule sends it, the journal keeps it, a later rule
sees it with `email_sent`, and a repeated event sends nothing more."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.bitrix24_env import ROOT, Bridge

PACK = """
version: 1
pack: email-test
rules:
  - id: no-answer-email
    when: {kind: lead, stage_to: no_answer}
    then:
      - send_email: {template: no_answer, to: client}
  - id: note-the-email
    when: {kind: lead, in_stage: no_answer, if: {email_sent: no_answer}}
    then:
      - add_comment: {text: "Клиенту отправлено письмо «Не смогли дозвониться»"}
"""


@pytest.fixture
def bridge(make_bridge, tmp_path: Path) -> Bridge:
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(
        "version: 1\nlead:\n  stages:\n    no_answer: [IN_PROCESS]\n", encoding="utf-8"
    )
    (tmp_path / "bridge.yaml").write_text(
        f"""
version: 1
tenants:
  remarka:
    crm: bitrix24
    connection:
      webhook_url_env: REMARKA_B24_WEBHOOK_URL
      application_token_env: REMARKA_B24_APP_TOKEN
    mapping: mapping.yaml
    regulations: [pack.yaml]
    retry_intervals: [0, 0, 0]
    email:
      templates: {ROOT / "config" / "templates" / "email"}
      outbox: outbox
      sender: "Ремарка <sales@remarka.example>"
""",
        encoding="utf-8",
    )
    return make_bridge(tmp_path / "bridge.yaml")


def outbox(bridge: Bridge) -> list[Path]:
    return sorted((bridge.runtime.tenant("remarka").base / "outbox").glob("*.eml"))


def test_a_rule_sends_the_template_once_and_a_later_rule_sees_it(bridge: Bridge) -> None:
    email = [{"VALUE": "client@example.ru", "VALUE_TYPE": "WORK"}]
    lead_id = bridge.sandbox.add_lead({"TITLE": "Заявка с сайта", "NAME": "Ирина", "EMAIL": email})
    bridge.work()
    bridge.sandbox.update_lead(lead_id, {"STATUS_ID": "IN_PROCESS"})
    bridge.work()

    [sent] = outbox(bridge)
    message = BytesParser(policy=policy.default).parse(sent.open("rb"))
    assert message["To"] == "client@example.ru"
    assert message["Subject"] == "Не смогли до вас дозвониться — Заявка с сайта"
    action = bridge.runtime.journal.recent(1)[0]["actions"][0]
    assert (action.kind, action.status, action.result["template"]) == (
        "send_email",
        "done",
        "no_answer",
    )

    bridge.sandbox.update_lead(lead_id, {"TITLE": "Заявка с сайта (перезвонить)"})
    bridge.settle()
    assert len(outbox(bridge)) == 1
    [comment] = bridge.sandbox.comments_for("lead", lead_id)
    assert comment["COMMENT"] == "Клиенту отправлено письмо «Не смогли дозвониться»"


def test_a_client_without_an_address_fails_the_action_and_says_why(bridge: Bridge) -> None:
    lead_id = bridge.sandbox.add_lead({"TITLE": "Без почты"})
    bridge.work()
    bridge.sandbox.update_lead(lead_id, {"STATUS_ID": "IN_PROCESS"})
    bridge.work()
    assert outbox(bridge) == []
    action = bridge.runtime.journal.recent(1)[0]["actions"][0]
    assert action.status == "failed"
    assert "has no e-mail address" in action.error
