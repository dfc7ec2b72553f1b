"""`bridge try`: the tutorial's pack on a sandbox of each CRM, played end to end, by the
command words and through the page."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from bridge.cli import cli
from bridge.trial import Trial
from bridge.trial.commands import play
from bridge.trial.page import blueprint
from tests import tutorial
from tests.bitrix24_env import ROOT

DOC = (ROOT / "docs" / "first-pack.md").read_text(encoding="utf-8")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The example config with the tutorial's tenant, and the same tenant on amoCRM."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    tutorial.write(DOC, tmp_path)
    shutil.copy(ROOT / "tests/fixtures/try/heating-amocrm.yaml", tmp_path / "config/mappings")
    path = tmp_path / "config" / "bridge.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    amo = dict(data["tenants"]["heating"], crm="amocrm", mapping="mappings/heating-amocrm.yaml")
    amo["connection"] = {  # the account's; bridge try points it at its sandbox instead
        "base_url": "https://teplodom.amocrm.ru",
        "account_id": 31000001,
        "client_id": "heating-integration",
        "client_secret_env": "HEATING_AMO_CLIENT_SECRET",
        "redirect_uri": "https://bridge.example/oauth/amocrm",
        "webhook_secret_env": "HEATING_AMO_HOOK_SECRET",
    }
    data["tenants"]["heating-amo"] = amo
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(params=["heating", "heating-amo"], ids=["bitrix24", "amocrm"])
def trial(request, config: Path, redis_url: str, redis_conn) -> Iterator[Trial]:
    start = datetime.fromisoformat("2025-11-14T10:00:00+03:00")  # a Friday
    found = Trial(
        request.param,
        config_path=str(config),
        start=start,
        redis_url=redis_url,
        pages=(blueprint,),
    )
    yield found
    found.close()


def say(trial: Trial, line: str) -> str:
    out = "\n".join(play(trial, line))
    assert "error:" not in out, out
    return out


def made(trial: Trial, kind: str) -> str:
    """The id of the last record of a kind the trial made."""
    return [r.id for r in trial.records if r.kind == kind][-1]


def test_a_web_lead_called_in_time_goes_into_work_and_its_clock_stops(trial: Trial) -> None:
    assert "web-lead-call-in-15-minutes scheduled" in say(
        trial, 'new lead "Котёл на дачу" source=WEB'
    )
    lead = made(trial, "lead")
    assert "call-takes-lead-into-work fired" in say(trial, f"call on lead {lead} completed")
    assert trial.record(trial.records[0]).stage == "in_work"  # the bridge's move, read back
    out = say(trial, "clock +20 minutes")
    assert f"timer web-lead-call-in-15-minutes step 0 on lead {lead} at Fri 14 Nov 10:15" in out
    assert "nothing to do" in out and trial.stand.tasks() == []


def test_a_web_lead_left_alone_goes_to_the_head_of_sales(trial: Trial) -> None:
    say(trial, 'new lead "Отопление склада" source=WEB')
    out = say(trial, "advance the clock to +30 minutes")
    head = trial.tenant.mapping.users["orlov"]
    assert (
        f"task «Заявке с сайта 15 минут не звонили: Отопление склада» → user {head}, "
        "deadline 2025-11-14T11:15+03:00"
    ) in out


def test_a_deal_from_proposal_to_the_thank_you_e_mail(trial: Trial) -> None:
    say(trial, 'new deal "Котёл Петровым" at kp_prep for petrov amount=650000')
    deal, petrov = made(trial, "deal"), trial.tenant.mapping.users["petrov"]
    out = say(trial, f"deal {deal} to kp_sent")
    assert f"task «Укажите модель котла: Котёл Петровым» → user {petrov}" in out
    out = say(trial, f"call on deal {deal} outgoing completed")
    # Friday's call: the next working day is Saturday, a working day of «Теплодом»
    assert "«Перезвонить клиенту: Котёл Петровым»" in out
    assert "deadline 2025-11-15T12:00+03:00" in out
    say(trial, f'deal {deal} set boiler_model="Viessmann Vitodens 100"')
    out = say(trial, f"deal {deal} to won")
    assert "Спасибо за покупку — Котёл Петровым → anna.smirnova@client.example" in out
    [mail] = trial.emails()
    text = mail.get_body(("plain",)).get_content()
    assert "Здравствуйте, Анна Смирнова!" in text
    assert "Petrov, petrov@stand.example" in text  # signed by the deal's manager
    assert "«Теплодом», котлы и отопление" in text


def test_the_clock_runs_the_sweeps_on_their_schedules(trial: Trial) -> None:
    say(trial, 'new deal "Котельная" at kp_sent amount=900000 boiler_model=Buderus')
    out = say(trial, "clock 2025-12-01 10:00")
    assert "sweep big-deal-stuck (day 09:00) (14 times)" in out  # its working days, Saturdays too
    assert "sweep idle-deals-on-monday (monday 10:00) (3 times)" in out
    assert "«Крупная сделка стоит 5 рабочих дней: Котельная»" in out
    assert "deadline 2025-11-21T18:00+03:00" in out  # found on Friday's sweep, 5 days on
    assert "«Сделка без движения 14 дней: Котельная»" in out  # Monday 1 December, not the 24th


def test_the_page_plays_a_line_and_shows_what_the_bridge_wrote(trial: Trial) -> None:
    say(trial, 'new deal "Котёл в баню" at kp_prep')
    deal = made(trial, "deal")
    answer = requests.post(trial.url, data={"line": f"deal {deal} to lost"}, timeout=30)
    assert answer.status_code == 200  # redirected to the page
    page = answer.text
    assert f"deal {deal} to lost" in page
    assert "Укажите причину отказа: Котёл в баню" in page
    assert re.search(r'<table id="tasks">.*Укажите причину отказа', page, re.DOTALL)
    typo = requests.post(trial.url, data={"line": "dael 1 to lost"}, timeout=30).text
    assert "unknown command &#39;dael&#39; (did you mean &#39;deal&#39;?)" in typo


def test_mistakes_are_sentences(trial: Trial) -> None:
    assert play(trial, "deal 99 to lost") == [
        "error: no deal 99 in this trial; made so far: none yet (`new deal ...`)"
    ]
    say(trial, 'new deal "Котёл" at kp_prep')
    [line] = play(trial, f"deal {made(trial, 'deal')} to kp_snt")
    assert line.startswith("error: unknown stage of a deal 'kp_snt' (did you mean 'kp_sent'?)")
    [line] = play(trial, 'new deal "Котёл" boiler_modl=X')
    assert line.startswith("error: unknown field of a deal 'boiler_modl' (did you mean")
    [line] = play(trial, "clock yesterday 10:00")
    assert line.startswith("error: 'yesterday' is not a day")


@pytest.fixture
def onec_trial(tmp_path: Path, redis_url: str, redis_conn) -> Iterator[Trial]:
    """The fireworks shop's orders in 1C (config/bridge.yaml, tenant fireworks-1c), whose
    tasks are made in the shop's Bitrix24 (``tasks_in: fireworks``): two sandboxes."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    start = datetime.fromisoformat("2025-11-14T10:00:00+03:00")  # a Friday
    found = Trial(
        "fireworks-1c",
        config_path=str(tmp_path / "config" / "bridge.yaml"),
        start=start,
        redis_url=redis_url,
        pages=(blueprint,),
    )
    yield found
    found.close()


def test_a_1c_order_cancelled_without_reason_gets_a_comment_a_task_and_an_e_mail(
    onec_trial: Trial,
) -> None:
    trial = onec_trial
    assert "nothing to do" in say(trial, 'new order "Иванов Пётр" for smirnova')
    out = say(trial, 'order ДЕМО-0001 to cancelled comment="Клиент передумал"')
    # the comment, back in the order in 1C after its next exchange (rule F6)
    assert "comment on 1C order ДЕМО-0001: Нарушение регламента: заказ отменён" in out
    [order] = trial.stand.sandbox.orders.values()  # type: ignore[attr-defined]
    assert order.comment.startswith("Клиент передумал\n")  # the operator's text stays first
    assert "Нарушение регламента" in order.comment
    # the task, in the shop's Bitrix24: 1C has none
    title = "Допишите в комментарий причину отмены и свою фамилию: Заказ ДЕМО-0001 от 14.11.2025"
    assert f"task «{title}» → user 3, deadline 2025-11-14T11:00+03:00" in out
    assert [t.text for t in trial.stands["fireworks"].tasks()] == [title]
    assert (
        "Заказ ДЕМО-0001 от 14.11.2025: отмена без причины и фамилии оператора → "
        "smirnova@petarda.example (e-mail, in the outbox)"
    ) in out
    [mail] = trial.emails()
    assert "Комментарий сейчас: Клиент передумал" in mail.get_body(("plain",)).get_content()
    # a working day later, still no reason: the head of sales (orlova, user 9) hears of it
    out = say(trial, "clock +1 working day")
    assert "timer cancelled-order-comment-escalation step 0 on order ДЕМО-0001" in out
    assert "«Отмена без причины или фамилии оператора: Заказ ДЕМО-0001 от 14.11.2025» → user 9" in (
        out
    )


def test_1c_orders_in_words_a_manager_uses(onec_trial: Trial) -> None:
    trial = onec_trial
    say(trial, 'new order "Петрова Ольга" for kuznetsova client 1')
    out = say(trial, 'order демо-0001 to cancelled comment="Клиент передумал, отменила Кузнецова"')
    assert "nothing to do" in out  # the reason and the surname are there
    say(trial, 'new order "ООО Праздник" client 2')
    out = say(trial, "order 2 to in_work")  # the number the order's name ends in
    assert "field of 1C order ДЕМО-0002: В работе с = 2025-11-14T07:00:00+00:00" in out
    assert trial.stand.sandbox.orders[made(trial, "order")].requisites == {  # type: ignore[attr-defined]
        "В работе с": "2025-11-14T07:00:00+00:00"
    }
    out = say(trial, 'new order "ООО Праздник, второй" client 2')  # the same client's phone
    assert "field of 1C order ДЕМО-0003: Повторный заказ к = ДЕМО-0002" in out
    assert "comment on 1C order ДЕМО-0003: Повторный заказ: у клиента уже есть открытый" in out
    shown = "\n".join(play(trial, "show"))
    assert "order ДЕМО-0002: «Заказ ДЕМО-0002 от 14.11.2025», in_work, user 3" in shown
    assert "fields set by the bridge:" in shown
    assert play(trial, "call on order 2") == [
        "error: 1C's exchange with the site carries orders, not calls"
    ]
    [line] = play(trial, "order 7 to lost")
    assert line == (
        "error: no order 7 in this trial; made so far: "
        "order ДЕМО-0001, order ДЕМО-0002, order ДЕМО-0003"
    )


def test_the_1c_example_of_the_configuration_reference_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = reference.split("**A 1C tenant**")[1].split("\n## ")[0]
    [command] = tutorial.commands(section)
    assert command.args[:3] == ["bridge", "try", "fireworks-1c"]
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    result = CliRunner().invoke(cli, command.args[1:])
    assert result.exit_code == 0, result.output
    assert command.shown
    for line in command.shown:
        assert line.rstrip() in result.output, f"{line!r} not in:\n{result.output}"


def test_deadlines_are_shown_in_the_tenants_zone(config: Path, redis_url: str, redis_conn) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["tenants"]["heating"]["timezone"] = "Asia/Yekaterinburg"  # the sandbox keeps Moscow's
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    start = datetime.fromisoformat("2025-11-14T10:00:00+05:00")
    trial = Trial("heating", config_path=str(config), start=start, redis_url=redis_url)
    try:
        say(trial, 'new lead "Фильтр" source=WEB')
        out = say(trial, "clock +20 minutes")
        assert "«Заявке с сайта 15 минут не звонили: Фильтр»" in out
        assert "deadline 2025-11-14T11:15+05:00" in out  # 10:15 and one working hour, local
    finally:
        trial.close()
