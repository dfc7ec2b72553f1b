"""The 1C side of the tests: the fireworks shop's 1C (stand-in) exchanging with a bridge on
loopback, its tasks created in the shop's Bitrix24 (sandbox), e-mail in an outbox folder.

The tenants are the example's (config/bridge.yaml: ``fireworks`` on Bitrix24, ``fireworks-1c``
on 1C with ``tasks_in: fireworks``), with their real mappings, packs and templates, written
into the test's folder with the store, the outbox and no waiting between retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from bridge.app import create_app
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.crms.onec.sandbox import ExchangeLog, OneCSandbox
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from bridge.worker import run_worker

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
TENANT, PAIRED = "fireworks-1c", "fireworks"
LOGIN, PASSWORD = "bridge", "exchange-secret"
PEOPLE = {3: "Смирнова Анна", 4: "Кузнецова Мария", 9: "Орлова Наталья"}


def tenants(tmp: Path, connection: dict[str, Any]) -> dict[str, Any]:
    """The example's two fireworks tenants, paths made absolute, the 1C one's connection
    extended."""
    example = yaml.safe_load((CONFIG / "bridge.yaml").read_text(encoding="utf-8"))["tenants"]
    out = {}
    for name in (PAIRED, TENANT):
        tenant = example[name]
        tenant["mapping"] = str(CONFIG / tenant["mapping"])
        tenant["regulations"] = [str(CONFIG / p) for p in tenant["regulations"]]
        tenant["email"] |= {
            "templates": str(CONFIG / tenant["email"]["templates"]),
            "signatures": str(CONFIG / tenant["email"]["signatures"]),
            "outbox": str(tmp / "outbox"),
        }
        tenant["retry_intervals"] = [0, 0, 0]
        out[name] = tenant
    out[TENANT]["connection"] |= {"store": str(tmp / "store"), **connection}
    return out


@dataclass
class OneCBridge:
    """The whole flow on loopback: 1C's exchange -> the bridge -> queue -> worker -> Bitrix24."""

    onec: OneCSandbox
    portal: Bitrix24Sandbox
    runtime: Runtime
    server: LoopbackServer
    outbox: Path

    @property
    def hook_url(self) -> str:
        """Where 1C's exchange node points."""
        return f"{self.server.url}/hooks/onec/{TENANT}"

    def work(self) -> None:
        """Run the worker until the queue is empty."""
        run_worker(self.runtime, burst=True)

    def exchange(self, **options: Any) -> ExchangeLog:
        """One exchange of 1C with the bridge; the worker runs between import and query."""
        options.setdefault("before_query", self.work)
        return self.onec.exchange(self.hook_url, LOGIN, PASSWORD, **options)

    def emails(self) -> list[EmailMessage]:
        """The e-mails the bridge sent, oldest first."""
        files = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        parse = BytesParser(policy=policy.default)
        return [parse.parse(path.open("rb")) for path in files]  # type: ignore[misc]

    def tasks(self) -> list[dict[str, Any]]:
        """The tasks of the paired Bitrix24, oldest first."""
        return [self.portal.tasks[k] for k in sorted(self.portal.tasks)]


@pytest.fixture
def make_onec(
    tmp_path: Path,
    redis_url: str,
    redis_conn: redis.Redis,
    journal_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., OneCBridge]]:
    """Build the shop's 1C and Bitrix24 wired to a bridge; options go to the 1C connection."""
    started: list[OneCBridge] = []

    def build(*, container: bool = False, **connection: Any) -> OneCBridge:
        encoding = connection.setdefault("encoding", "windows-1251")
        onec = OneCSandbox(encoding=encoding, container=container).start()
        portal = Bitrix24Sandbox().start()
        for user_id, name in PEOPLE.items():
            first, _, last = name.partition(" ")
            portal.add_user(user_id, last, first, f"user{user_id}@petarda.example")
        odata = connection.pop("odata", None)
        if odata:  # True, or more keys of the odata block
            extra = odata if isinstance(odata, dict) else {}
            connection["odata"] = {"url": onec.odata_url, "login": "bridge-odata", **extra}
            connection["odata_password_env"] = "FIREWORKS_1C_ODATA_PASSWORD"
        config = tmp_path / "bridge.yaml"
        body = {"version": 1, "tenants": tenants(tmp_path, connection)}
        config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        monkeypatch.setenv("FIREWORKS_B24_WEBHOOK_URL", portal.webhook_url)
        monkeypatch.setenv("FIREWORKS_B24_APP_TOKEN", portal.application_token)
        monkeypatch.setenv("FIREWORKS_1C_PASSWORD", PASSWORD)
        monkeypatch.setenv("FIREWORKS_1C_ODATA_PASSWORD", "odata-secret")
        rt = Runtime.build(str(config), journal_url, redis_url)
        server = LoopbackServer(create_app(runtime=rt)).start()
        env = OneCBridge(onec, portal, rt, server, tmp_path / "outbox")
        started.append(env)
        return env

    yield build
    for env in started:
        env.server.stop()
        env.portal.stop()
        env.onec.stop()


@pytest.fixture
def onec(make_onec: Callable[..., OneCBridge]) -> OneCBridge:
    """The shop's 1C in windows-1251, wired to a bridge."""
    return make_onec()
