"""``tasks_in``: a tenant whose CRM has no tasks (1C) has them created by another tenant's CRM.

`bridge validate` checks the pairing with file:line; the paired CRM makes a task bound to none
of its entities and finds it again after a crash (the connectors' contract)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.actions import CreateTask
from bridge.cli import cli
from bridge.models import Action, Record, RecordRef
from tests.amocrm_env import IVANOVA, AmoBridge
from tests.onec_env import ROOT


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config"


def validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", "--config", str(path / "bridge.yaml")])
    return result.exit_code, result.output


def edit(path: Path, old: str, new: str) -> int:
    """Replace text; returns the line it is on."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return next(i for i, line in enumerate(text.splitlines(), 1) if old in line)


def test_without_tasks_in_a_1c_pack_that_makes_tasks_is_refused(config_dir: Path) -> None:
    edit(config_dir / "bridge.yaml", "    tasks_in: fireworks", "")
    code, out = validate(config_dir)
    assert code == 1
    assert "1C cannot execute create_task on a order (it can: add_comment, update_fields)" in out
    assert f"{config_dir / 'regulations' / 'fireworks-1c.yaml'}:" in out


def test_tasks_in_must_name_another_tenant_that_makes_tasks(config_dir: Path) -> None:
    config = config_dir / "bridge.yaml"
    line = edit(config, "tasks_in: fireworks ", "tasks_in: fireworx ")
    code, out = validate(config_dir)
    assert code == 1
    assert (
        f"{config}:{line}: tenants.fireworks-1c.tasks_in: no other tenant 'fireworx' "
        "(did you mean 'fireworks'?)"
    ) in out
    edit(config, "tasks_in: fireworx ", "tasks_in: fireworks-1c ")
    assert "no other tenant 'fireworks-1c'" in validate(config_dir)[1]


def test_tasks_in_a_tenant_whose_crm_has_no_tasks_is_refused(config_dir: Path) -> None:
    config = config_dir / "bridge.yaml"
    text = config.read_text(encoding="utf-8")
    twin = text[text.index("  fireworks-1c:") : text.index("  service:")]
    twin = twin.replace("fireworks-1c:", "fireworks-1c-twin:")
    config.write_text(text + twin.replace("tasks_in: fireworks ", "tasks_in: fireworks-1c "))
    code, out = validate(config_dir)
    assert code == 1
    expected = "tenants.fireworks-1c-twin.tasks_in: fireworks-1c is on 1C, which creates no tasks"
    assert expected in out


def test_amocrm_makes_a_paired_tenant_s_task_unbound_and_finds_it_again(amo: AmoBridge) -> None:
    order = Record(kind="order", id="7f1c2d3e-4a5b-11ef-8a00-00155d000310", crm="onec")
    task = CreateTask(
        title="Допишите в комментарий причину отмены и свою фамилию: Заказ ПТ00-000310",
        responsible=str(IVANOVA),
        deadline=datetime(2025, 10, 31, 14, 0, tzinfo=UTC),
    )
    action = Action("k" * 32, "cancelled-order-comment", RecordRef("order", order.id), task)
    conn = amo.connector()

    [outcome] = conn.execute(order, [action]).values()

    assert outcome.status == "done"
    made = amo.sandbox.tasks[int(outcome.result["task_id"])]
    assert (made["entity_id"], made["entity_type"]) == (None, None)
    assert made["responsible_user_id"] == IVANOVA
    assert conn.find_done(order, action, datetime(2025, 10, 31, tzinfo=UTC)) == outcome.result
