"""Secrets and personal data never leave masked: a whole flow on each CRM's sandbox, then every
log line written, every journal row and every command the bridge sent Redis about its streams
and jobs is searched for each secret of the fixtures and each phone and e-mail of its records.

The records carry the client's phone and e-mail where managers put them (a deal's title), so
they flow into snapshots, task titles (actions' summaries) and log lines. Logging runs at
DEBUG through a handler set up as a deployment's is (the app adds its masking filter to the
root logger's handlers), so urllib3's request lines are searched too. Redis is watched with
MONITOR for the whole flow: stream entries are deleted once processed, so a look at the end
would miss them.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis
import requests

from bridge.app import create_app
from bridge.crms.amocrm.auth import TokenStore
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox
from bridge.journal import Base
from bridge.runtime import Runtime
from bridge.sandbox.server import LoopbackServer
from tests.amocrm_env import ACCOUNTS, LOST, MEETING, SECRETS, AmoBridge, lead
from tests.bitrix24_env import EVENTS, TEST_CONFIG, Bridge, deal, seed

PHONE = "+7 912 345-67-89"
EMAIL = "ivan.petrov@example.com"
TITLE = f"Ремонт кухни, {PHONE}, {EMAIL}"
WEBHOOK_CODE = "w3bh00k-c0de-4f1e"
APP_TOKEN = "app-t0ken-9c2b7e"


@dataclass
class Seen:
    """Everything the bridge wrote outside the CRM during a flow."""

    logs: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)


class _Lines(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@pytest.fixture
def seen(redis_url: str) -> Iterator[Seen]:
    """Log lines (DEBUG, through the app's masking) and Redis commands on streams and jobs."""
    out = Seen()
    root, handler = logging.getLogger(), _Lines(out.logs)
    level = root.level
    root.addHandler(handler)  # before the app is built: it adds its filter to root's handlers
    root.setLevel(logging.DEBUG)
    stop = threading.Event()
    watcher = threading.Thread(target=_monitor, args=(redis_url, out.redis, stop), daemon=True)
    watcher.start()
    yield out
    stop.set()
    redis.Redis.from_url(redis_url).ping()  # one more command, so that the watcher wakes
    watcher.join(timeout=10)
    root.removeHandler(handler)
    root.setLevel(level)


def _monitor(url: str, into: list[str], stop: threading.Event) -> None:
    with redis.Redis.from_url(url).monitor() as watch:
        while not stop.is_set():
            command = watch.next_command()["command"]
            if "bridge:q:" in command or "rq:" in command:  # streams, admission, jobs
                into.append(command)


@pytest.fixture
def portal(
    seen: Seen,
    redis_url: str,
    redis_conn: redis.Redis,
    journal_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Bridge]:
    """Remarka's portal with a webhook code and a token of its own (the defaults are words
    found everywhere), wired to a bridge as tests/bitrix24_env.py wires it."""
    sandbox = Bitrix24Sandbox(webhook_code=WEBHOOK_CODE, application_token=APP_TOKEN).start()
    seed(sandbox)
    monkeypatch.setenv("REMARKA_B24_WEBHOOK_URL", sandbox.webhook_url)
    monkeypatch.setenv("REMARKA_B24_APP_TOKEN", APP_TOKEN)
    rt = Runtime.build(str(TEST_CONFIG), journal_url, redis_url)
    env = Bridge(sandbox, rt, LoopbackServer(create_app(runtime=rt)).start())
    for name in EVENTS:
        sandbox.subscribe(name, env.hook_url)
    yield env
    env.server.stop()
    sandbox.stop()


def test_a_bitrix24_flow_leaks_no_secret_phone_or_email(portal: Bridge, seen: Seen) -> None:
    deal_id = portal.sandbox.add_deal(deal(TITLE, "C1:MEETING"))
    portal.work()
    portal.sandbox.update_deal(deal_id, {"STAGE_ID": "C1:LOSE"}, by_user=3)
    portal.settle()
    forged = portal.sandbox.post_event(
        "ONCRMDEALUPDATE", deal_id, portal.hook_url, application_token=f"x{APP_TOKEN}"
    )
    assert forged.status_code == 403  # the stranger's guess holds the token
    [task] = portal.sandbox.tasks_for(f"D_{deal_id}")
    assert PHONE in task["TITLE"]  # the CRM has it: the flow carried it through
    _assert_nowhere(portal.runtime, seen, [WEBHOOK_CODE, APP_TOKEN])


def test_an_amocrm_flow_leaks_no_secret_phone_or_email(
    seen: Seen, make_amo_bridge: Callable[..., AmoBridge]
) -> None:
    amo = make_amo_bridge()
    lead_id = amo.sandbox.add_lead(lead(TITLE, MEETING))
    amo.work()
    amo.sandbox.update_lead(lead_id, {"status_id": LOST}, by_user=5001)
    amo.settle()
    guess = amo.hook_url(secret=f"{SECRETS['remarka']}x")  # a stranger's guess holds the secret
    assert requests.post(guess, data={"account[id]": "1"}, timeout=5).status_code == 403
    [task] = amo.sandbox.tasks_for(lead_id)
    assert PHONE in task["text"]
    tokens = TokenStore(amo.runtime.redis, ACCOUNTS["remarka"]).load()
    assert tokens is not None
    secrets = [SECRETS["remarka"], "sandbox-secret", tokens.access_token, tokens.refresh_token]
    _assert_nowhere(amo.runtime, seen, secrets)


def _assert_nowhere(rt: Runtime, seen: Seen, secrets: list[str]) -> None:
    journal = _journal_rows(rt)
    places = {"log": "\n".join(seen.logs), "journal": journal, "redis": _redis(rt, seen)}
    # each place was searched: log lines, the rows of the flow, the events as queued
    assert any("/hooks/" in line for line in seen.logs)  # the request lines too
    assert "Ремонт кухни" in journal and "record_id" in places["redis"]
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:6]}...) in the {place}"
        flat = re.sub(r"[\s\-()]", "", text)  # a phone in any grouping
        assert "9123456789" not in flat, f"the phone in the {place}"
        assert "ivan.petrov" not in text, f"the e-mail in the {place}"


def _journal_rows(rt: Runtime) -> str:
    with rt.journal.engine.connect() as conn:
        tables = Base.metadata.sorted_tables
        return "\n".join(repr(conn.execute(t.select()).all()) for t in tables)


def _redis(rt: Runtime, seen: Seen) -> str:
    """The commands seen, their byte escapes decoded, and the rq jobs still kept."""
    sent = "\n".join(seen.redis)
    sent = re.sub(r"(?:\\x[0-9a-f]{2})+", lambda m: _unescape(m.group()), sent)
    jobs = []
    for key in rt.redis.scan_iter("rq:job:*"):
        if rt.redis.type(key) == b"hash":
            data = rt.redis.hget(key, "data")
            jobs.append(repr(zlib.decompress(data)) if data else "")
    return sent + "\n".join(jobs)


def _unescape(escaped: str) -> str:
    raw = bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", escaped))
    return raw.decode("utf-8", errors="replace")
