"""A CRM added from outside bridge/ runs a real pack end to end (docs/adding-a-crm.md).

TinyCRM (tests/tinycrm/) is declared, registered at run time, validated by the config, served
by the app's loop over the registry, masked in logs, and driven through the real flow:
sandbox webhook -> ingress -> queue -> pipeline -> Remarka's pack -> connector -> sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bridge import crms
from bridge.app import create_app
from bridge.masking import redact
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.worker import run_worker
from tests.bitrix24_env import ROOT
from tests.tinycrm import TinyCRM
from tests.tinycrm.sandbox import API_KEY, TinySandbox

CONFIG = """\
version: 1
tenants:
  remarka:
    crm: tinycrm
    connection:
      base_url: {base_url}
      api_key_env: TINY_API_KEY
      hook_token_env: TINY_HOOK_TOKEN
      requests_per_second: 50
      burst: 50
    mapping: {root}/tests/tinycrm/remarka.yaml
    regulations: [{root}/config/regulations/remarka.yaml]
    roles: {{engineer: petrov, estimator: sidorova, head_of_sales: orlov,
             estimate_approver: orlov, curator: kuznetsova}}
    retry_intervals: [0, 0, 0]
"""


@pytest.fixture
def tiny(
    tmp_path: Path,
    redis_url: str,
    redis_conn: redis.Redis,
    journal_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[TinySandbox, Runtime]]:
    crms.register(TinyCRM)
    sandbox = TinySandbox().start()
    monkeypatch.setenv("TINY_API_KEY", API_KEY)
    monkeypatch.setenv("TINY_HOOK_TOKEN", "tiny-hook-s3cret")
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG.format(base_url=sandbox.base_url, root=ROOT), encoding="utf-8")
    rt = Runtime.build(str(config), journal_url, redis_url)
    server = LoopbackServer(create_app(runtime=rt)).start()
    sandbox.hooks.append(f"{server.url}/hooks/tinycrm/remarka/tiny-hook-s3cret")
    yield sandbox, rt
    server.stop()
    sandbox.stop()
    crms.unregister(TinyCRM.name)


def settle(sandbox: TinySandbox, rt: Runtime) -> None:
    for _ in range(3):  # the bridge's own writes echo back as webhooks
        sandbox.wait_delivered()
        run_worker(rt, burst=True)


def test_the_remarka_pack_runs_on_a_crm_added_from_tests(
    tiny: tuple[TinySandbox, Runtime],
) -> None:
    sandbox, rt = tiny
    refused = sandbox.add_deal("Ремонт офиса, пр. Мира 12", "meeting", "3")
    kept = sandbox.add_deal("Дизайн-проект, ул. Садовая 3", "quote", "3")
    settle(sandbox, rt)
    before = len(sandbox.tasks)
    sandbox.update_deal(refused, {"stage": "lost"})
    sandbox.update_deal(kept, {"stage": "lost", "refusal_reason": "Выбрали другого подрядчика"})
    settle(sandbox, rt)
    new = sandbox.tasks[before:]
    assert [(t["deal_id"], t["title"], t["owner"]) for t in new] == [
        (str(refused), "Укажите причину отказа: Ремонт офиса, пр. Мира 12", "3")
    ]
    settle(sandbox, rt)  # echoes and repeats make no second task
    assert len(sandbox.tasks) == before + 1


def test_the_registry_makes_the_new_crm_a_citizen(tiny: tuple[TinySandbox, Runtime]) -> None:
    assert "tinycrm" in crms.names()
    assert (
        redact("POST /hooks/tinycrm/remarka/tiny-hook-s3cret") == "POST /hooks/tinycrm/remarka/***"
    )
    sandbox, rt = tiny
    client = create_app(runtime=rt).test_client()
    wrong = client.post(
        "/hooks/tinycrm/remarka/guess", data={"event": "deal.changed", "deal_id": "1"}
    )
    assert wrong.status_code == 403
