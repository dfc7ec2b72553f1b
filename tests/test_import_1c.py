"""``bridge import-1c FILE...``: orders from CommerceML files and report exports go the way of
an upload (kept, queued, ruled), and importing the same file again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from bridge.cli import cli
from bridge.models import RecordRef
from tests.onec_env import TENANT, OneCBridge

FIXTURES = Path(__file__).parent / "fixtures" / "onec"
COLUMNS = {
    "Номер": "Номер",
    "Дата": "Дата",
    "Контрагент": "Контрагент",
    "Телефон": "Телефон",
    "Сумма": "Сумма",
    "Статус": "Статус заказа",
    "Менеджер": "Менеджер",
    "Комментарий": "Комментарий",
}
# a report as 1C saves it: windows-1251, semicolons, a group heading per manager, sums with
# no-break spaces and a decimal comma, a total at the end
REPORT = [
    ["Номер", "Дата", "Контрагент", "Телефон", "Сумма", "Статус", "Менеджер", "Комментарий"],
    ["Смирнова Анна", "", "", "", "", "", "", ""],
    ["ПТ00-000310", "30.10.2025 11:20:00", "Иванов Пётр", "+7 900 000-00-10", "13\u00a0128,00",
     "Отменен", "Смирнова Анна", "Клиент передумал"],
    ["ПТ00-000401", "24.10.2025 10:00:00", "Петрова Ольга", "+7 900 000-04-01", "4\u00a0700,00",
     "В работе", "Смирнова Анна", "ждём оплату по ссылке"],
    ["Итого", "", "", "", "17\u00a0828,00", "", "", ""],
]  # fmt: skip


@pytest.fixture
def onec(make_onec, journal_url: str, monkeypatch: pytest.MonkeyPatch) -> OneCBridge:
    monkeypatch.setenv("BRIDGE_JOURNAL_URL", journal_url)  # the command's own runtime
    return make_onec(columns=COLUMNS)


def run(onec: OneCBridge, *files: Path) -> str:
    config = str(onec.runtime.settings.path)
    args = ["import-1c", *map(str, files), "--tenant", TENANT, "--config", config]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def kept(onec: OneCBridge) -> dict[str, str]:
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    return {k.order.number: k.order.fields(conn.options.status, conn.options.flags)["Статус"]
            for k in conn.store.orders()}  # fmt: skip


def test_a_commerceml_file_is_ruled_like_an_upload_and_a_second_import_changes_nothing(
    onec: OneCBridge,
) -> None:
    file = FIXTURES / "orders-2.05-windows-1251.xml"
    assert run(onec, file).startswith(f"{file.name}: 2 order(s), 2 new or changed; upload ")
    onec.work()
    assert kept(onec) == {"ПТ00-000310": "Отменен", "ПТ00-000401": "В работе"}
    [task] = onec.tasks()
    assert task["TITLE"].endswith("свою фамилию: Заказ ПТ00-000310 от 30.10.2025")

    assert run(onec, file).startswith(f"{file.name}: 2 order(s), 0 new or changed; upload ")
    onec.work()
    assert len(onec.tasks()) == 1
    batches = [e["event"] for e in onec.runtime.journal.recent(20) if e["event"].type == "batch"]
    assert [b.reason for b in batches] == ["0 record(s)", "2 record(s), 2 queued"]


def test_a_csv_report_in_windows_1251(onec: OneCBridge, tmp_path: Path) -> None:
    report = tmp_path / "Заказы клиентов.csv"
    report.write_bytes("\r\n".join(";".join(row) for row in REPORT).encode("windows-1251"))
    assert run(onec, report).startswith(f"{report.name}: 2 order(s), 2 new or changed;")
    onec.work()
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    record = conn.fetch(RecordRef("order", "ПТ00-000310"))  # no GUID in a report: the number
    assert (record.stage, record.amount, record.responsible) == ("cancelled", 13128.0, "3")
    assert record.fields["date"] == "2025-10-30T11:20:00+03:00"
    assert len(onec.tasks()) == 1 and len(onec.emails()) == 1


def test_an_xlsx_report(onec: OneCBridge, tmp_path: Path) -> None:
    book = Workbook()
    for row in REPORT:
        book.active.append(row)
    report = tmp_path / "orders.xlsx"
    book.save(report)
    assert run(onec, report).startswith("orders.xlsx: 2 order(s), 2 new or changed;")
    onec.work()
    assert kept(onec) == {"ПТ00-000310": "Отменен", "ПТ00-000401": "В работе"}


def test_a_bad_file_is_named_and_nothing_of_it_is_kept(onec: OneCBridge, tmp_path: Path) -> None:
    bomb = tmp_path / "orders.xml"
    bomb.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    config = str(onec.runtime.settings.path)
    result = CliRunner().invoke(
        cli, ["import-1c", str(bomb), "--tenant", TENANT, "--config", config]
    )
    assert result.exit_code == 1
    assert f"import-1c: {bomb}: orders.xml: DTD и сущности" in result.stderr
    assert kept(onec) == {}
