"""The two channels besides tasks and e-mail: a messenger message (apprise) and a table row
(CSV, XLSX, Google Sheets), through the whole flow on the Bitrix24 sandbox.

The messenger is a local HTTP receiver behind apprise's ``json://`` target
(https://github.com/caronc/apprise/wiki/Notify_Custom_JSON: a POST of ``{"version", "title",
"message", "type"}``); Google Sheets is tested up to the request it would send
(``spreadsheets.values.append``, https://developers.google.com/sheets/api/reference/rest/v4/
spreadsheets.values/append), with ``responses`` standing in for Google.

The fireworks pack's own messages (F11 to the team's chat, F4 and F22 to the client's WhatsApp)
are played from their scenario files on the Bitrix24 stand (tests/pack_player.py), the
messengers standing on loopback (tests/messengers.py).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, request
from openpyxl import load_workbook
from sqlalchemy import select

from bridge import notify, tables, yamlfile
from bridge.actions import AppendRow, Notify
from bridge.config import TableConfig, load
from bridge.errors import PermanentError
from bridge.journal import ActionRow, EventRow
from bridge.sandbox.server import LoopbackServer
from bridge.scenarios import Scenario
from tests.bitrix24_env import ROOT, Bridge, deal
from tests.messengers import Messengers
from tests.pack_player import Player

PACK = """
version: 1
pack: channels
rules:
  - id: lost-to-team-chat
    when: {kind: deal, stage_to: lost}
    then:
      - notify:
          channel: team
          title: Отказ
          text: "Сделка «{{ record.title }}» проиграна, причина: {{ record.fields.refusal_reason }}"
      - append_row:
          table: refusals
          row: {Сделка: "{{ record.title }}", Причина: "{{ record.fields.refusal_reason }}"}
      - append_row:
          table: refusals_book
          row: {Сделка: "{{ record.title }}"}
"""
CHANNELS = """
    channels:
      team: {url_env: TEAM_CHAT_URL}
    tables:
      refusals: {file: var/refusals.csv, columns: [Сделка, Причина]}
      refusals_book: {file: var/refusals.xlsx, sheet: Отказы, columns: [Сделка, Ответственный]}
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A messenger on loopback: what apprise's json:// target posts to it."""
    got: list[dict] = []
    app = Flask("receiver")

    @app.post("/chat")
    def chat() -> tuple[str, int]:
        got.append(request.get_json())
        return "", 200

    server = LoopbackServer(app).start()
    yield server.url.replace("http://", "json://") + "/chat", got
    server.stop()


@pytest.fixture
def channels_bridge(
    make_bridge: Callable[..., Bridge],
    tmp_path: Path,
    receiver: tuple[str, list[dict]],
    monkeypatch: pytest.MonkeyPatch,
) -> Bridge:
    (tmp_path / "channels.yaml").write_text(PACK, encoding="utf-8")
    text = (ROOT / "tests" / "fixtures" / "bridge.yaml").read_text(encoding="utf-8")
    text = text.replace("../../config/", f"{ROOT}/config/")
    text = text.replace(
        "      - " + f"{ROOT}/config/regulations/remarka.yaml", "      - channels.yaml"
    )
    text = text.replace(
        "    retry_intervals: [0, 0, 0]", CHANNELS.rstrip() + "\n    retry_intervals: []"
    )
    (tmp_path / "bridge.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("TEAM_CHAT_URL", receiver[0])
    return make_bridge(tmp_path / "bridge.yaml")


def test_a_lost_deal_goes_to_the_team_chat_and_into_both_tables(
    channels_bridge: Bridge, receiver: tuple[str, list[dict]], tmp_path: Path
) -> None:
    bridge = channels_bridge
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE", "UF_CRM_1700000001": "Дорого"})
    bridge.work()

    [message] = receiver[1]
    assert message["title"] == "Отказ"
    assert message["message"] == "Сделка «Ремонт кухни» проиграна, причина: Дорого"
    with open(tmp_path / "var" / "refusals.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Сделка", "Причина", "bridge"]
    assert rows[1][:2] == ["Ремонт кухни", "Дорого"]
    book = load_workbook(tmp_path / "var" / "refusals.xlsx")
    sheet = book["Отказы"]
    assert [list(r)[:2] for r in sheet.iter_rows(values_only=True)] == [
        ["Сделка", "Ответственный"],
        ["Ремонт кухни", None],
    ]
    actions = bridge.runtime.journal.recent(1)[0]["actions"]
    assert {(a.kind, a.status) for a in actions} == {("notify", "done"), ("append_row", "done")}
    assert "TEAM_CHAT_URL" not in str([a.result for a in actions])


def test_a_messenger_that_refuses_keeps_the_message_waiting(
    channels_bridge: Bridge, monkeypatch: pytest.MonkeyPatch, receiver: tuple[str, list[dict]]
) -> None:
    bridge = channels_bridge
    monkeypatch.setenv("TEAM_CHAT_URL", receiver[0].replace("/chat", "/nowhere"))  # 404
    deal_id = bridge.sandbox.add_deal(deal("Ремонт кухни", "C1:MEETING"))
    bridge.work()
    bridge.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"})
    bridge.work()
    rows = bridge.runtime.journal.recent(1)[0]["actions"]
    notify = next(a for a in rows if a.kind == "notify")
    assert notify.status == "pending"
    assert notify.error == "channel team: the messenger refused the message"
    assert receiver[1] == []


@pytest.mark.parametrize("name", ["rows.csv", "rows.xlsx"])
def test_a_retried_action_adds_its_row_once(tmp_path: Path, name: str) -> None:
    config = load(ROOT / "config" / "bridge.yaml")
    tenant = config.tenants["remarka"]
    tenant.base = tmp_path
    tenant.config.tables["t"] = TableConfig(file=name, columns=["Сделка"])
    row = AppendRow("t", {"Сделка": "Ремонт"})
    assert tables.append(tenant, row, "k" * 32)["added"] is True
    assert tables.append(tenant, row, "k" * 32)["added"] is False
    assert tables.append(tenant, row, "m" * 32)["added"] is True


def _service_account() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "bridge-test",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "bridge@bridge-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


@responses.activate
def test_a_google_sheet_gets_the_row_as_values_append(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEETS_KEY", json.dumps(_service_account()))
    table = TableConfig(
        google_sheet="1AbC",
        sheet="Профи Шоу",
        columns=["Дата", "Место"],
        credentials_env="SHEETS_KEY",
    )
    responses.post(
        "https://oauth2.googleapis.com/token", json={"access_token": "t", "expires_in": 3600}
    )
    responses.get(
        re.compile(r"https://sheets.googleapis.com/v4/spreadsheets/1AbC\b.*"),
        json={
            "spreadsheetId": "1AbC",
            "properties": {"title": "Шоу"},
            "sheets": [
                {
                    "properties": {
                        "sheetId": 7,
                        "title": "Профи Шоу",
                        "index": 0,
                        "gridProperties": {"rowCount": 100, "columnCount": 3},
                    }
                }
            ],
        },
    )
    append = responses.post(
        re.compile(r"https://sheets.googleapis.com/v4/spreadsheets/1AbC/values/.*:append.*"),
        json={"updates": {"updatedRange": "'Профи Шоу'!A5:C5"}},
    )
    result = tables.append_to_sheet(
        table, ["31.12", "Сокольники", "abc"], tables.sheets_client(table)
    )
    assert result == {"range": "'Профи Шоу'!A5:C5"}
    sent = append.calls[0].request
    assert "valueInputOption=USER_ENTERED" in sent.url
    assert "%27%D0%9F%D1%80%D0%BE%D1%84%D0%B8" in sent.url  # 'Профи Шоу' quoted
    assert json.loads(sent.body)["values"] == [["31.12", "Сокольники", "abc"]]
    assert sent.headers["Authorization"] == "Bearer t"


@responses.activate
def test_google_refusing_the_key_fails_the_action(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEETS_KEY", "not json")
    table = TableConfig(google_sheet="1AbC", columns=["Дата"], credentials_env="SHEETS_KEY")
    with pytest.raises(PermanentError, match="SHEETS_KEY does not hold a JSON key"):
        tables.sheets_client(table)


def test_a_message_to_the_client_masks_the_phone_in_the_journal() -> None:
    message = Notify("whatsapp", "Здравствуйте! Стоимость заказа 4 500 ₽", to="+79123456789")
    assert "+79123456789" not in message.describe()
    assert message.describe().startswith("message to channel whatsapp to +7")


SCENARIOS = ROOT / "config" / "regulations" / "scenarios" / "fireworks"


@pytest.fixture
def play_fireworks(
    redis_url: str, journal_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[Player, list[str]]]]:
    """Play a fireworks scenario on the Bitrix24 stand; its messengers on loopback.
    ``unset`` names channel variables to take away before it plays."""
    players: list[Player] = []

    def play(name: str, unset: tuple[str, ...] = ()) -> tuple[Player, list[str]]:
        scenario = yamlfile.validate(Scenario, yamlfile.load(SCENARIOS / f"{name}.yaml"))
        player = Player(
            "fireworks", "bitrix24", scenario, (journal_url, redis_url), tmp_path, monkeypatch
        )
        players.append(player)
        for variable in unset:
            monkeypatch.delenv(variable)
        return player, player.play()

    yield play
    for player in players:
        player.close()


def _journal(player: Player) -> tuple[list[ActionRow], list[EventRow]]:
    with player.rt.journal.session() as s:
        return list(s.scalars(select(ActionRow))), list(s.scalars(select(EventRow)))


def test_a_claim_reaches_the_team_chat_in_the_crm_s_words(
    play_fireworks: Callable[..., tuple[Player, list[str]]],
) -> None:
    player, problems = play_fireworks("claim-to-mentor")
    assert problems == []
    [message] = player.messengers.got
    assert (message.channel, message.to, message.title) == ("team", None, "Претензия клиента")
    # the mapping's labels, never canonical names; the comment as the operator wrote it
    assert message.text.endswith(
        "Сумма заказа: 8300 ₽. Комментарий: Брак: 2 из 5 батарей не сработали"
    )
    assert "comments" not in message.text
    actions, _ = _journal(player)
    notify = next(a for a in actions if a.kind == "notify")
    assert (notify.status, notify.result) == ("done", {"channel": "team"})
    assert player.messengers.server.url.split("//")[1] not in str(
        [(a.summary, a.result, a.error) for a in actions]
    )


def test_the_client_s_whatsapp_gets_the_price_signed_for_their_region(
    play_fireworks: Callable[..., tuple[Player, list[str]]],
) -> None:
    player, problems = play_fireworks("order-prices-messenger")
    assert problems == []
    [message] = player.messengers.got
    assert (message.channel, message.to) == ("client_whatsapp", "+79160000951")
    assert "8300 ₽" in message.text
    # the shop's contacts for Moscow are read by the client: nothing of them masked
    assert message.text.endswith(
        "\n\nС уважением,\n«Петарда», Москва\n+7 495 000-00-01 · msk@petarda.example"
    )
    actions, events = _journal(player)
    kept = str([(a.summary, a.result, a.error) for a in actions] + [e.payload for e in events])
    for secret in ("916 000-09-51", "9160000951", player.messengers.server.url.split("//")[1]):
        assert secret not in kept


def test_with_no_url_set_the_message_fails_alone_saying_what_to_set(
    play_fireworks: Callable[..., tuple[Player, list[str]]],
) -> None:
    player, problems = play_fireworks("claim-to-mentor", unset=("FIREWORKS_TEAM_CHAT_URL",))
    assert problems == ["step 1: action 3: expected notify, got notify [failed]"]
    assert player.messengers.got == []
    actions, events = _journal(player)
    assert {a.kind: a.status for a in actions} == {
        "reassign": "done",
        "add_comment": "done",
        "notify": "failed",
    }
    notify = next(a for a in actions if a.kind == "notify")
    assert notify.error == (
        "channel team: secret FIREWORKS_TEAM_CHAT_URL is not set: export "
        "FIREWORKS_TEAM_CHAT_URL=... or put it in BRIDGE_SECRETS_FILE"
    )
    assert events[-1].status == "processed"


def test_a_phone_goes_in_the_messengers_form_and_a_chat_id_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = load(ROOT / "config" / "bridge.yaml").tenants["fireworks"]
    messengers = Messengers().start()
    monkeypatch.setenv("FIREWORKS_WHATSAPP_URL", messengers.url("client_whatsapp", to=True))
    try:
        for to in ("+7 916 000-09-51", "-1001234567890"):  # a phone; a Telegram group's id
            notify.send(tenant, Notify("client_whatsapp", "Здравствуйте!", to=to))
    finally:
        messengers.stop()
    assert [m.to for m in messengers.got] == ["+79160000951", "-1001234567890"]
