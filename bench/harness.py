"""What the benchmarks share: rounds and ratios, a private Redis, a migrated journal, Remarka's
tenant on a CRM's sandbox, acting events put in the stream, gunicorn on a free port.

This machine is shared and noisy, so no figure stands alone: each round measures the bridge and
a reference side by side (their order alternating, so that a drift of the machine's load does
not favour one side), and the median of the rounds' ratios is the result.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from sqlalchemy import create_engine

from bridge import crms, demo
from bridge.crms.receive import Incoming
from bridge.ingress import fields_of
from bridge.journal import migrate
from bridge.runtime import Runtime
from bridge.sandbox import Stand
from bridge.services import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv" / "bin"
TENANT = demo.TENANT
MANAGER = demo.MANAGER
ROUNDS = 3
PG_ADMIN_URL = os.environ.get("BRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# warnings and errors only (the sandboxes' request lines, Alembic's steps are no figures)
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # it sets itself to INFO otherwise
# a benchmark stopped by SIGTERM unwinds, so that its gunicorn, workers and Redis stop too
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

UNLIMITED = {"requests_per_second": 100_000.0, "burst": 1000}
"""A connection's rate limit raised so far that the CRM is never the bottleneck."""


# -- rounds and ratios ----------------------------------------------------------------------


@dataclass
class Comparison:
    """A figure of the bridge and its reference, round by round, with their ratio.

    ``goal``: what the issue asks of the median ratio (``goal_on="ratio"``) or of the median
    figure itself (``goal_on="figure"``): at least that much, or at most with
    ``lower_is_better``.
    """

    title: str
    figure: str
    reference: str
    unit: str
    goal: float | None = None
    goal_on: str = "ratio"
    lower_is_better: bool = False
    rounds: list[tuple[float, float]] = field(default_factory=list)

    def run(
        self, measure_figure: Callable[[], float], measure_reference: Callable[[], float], n: int
    ) -> Comparison:
        """Measure ``n`` rounds, the reference first in every other round; print each."""
        self.header()
        for index in range(n):
            if index % 2:
                reference = measure_reference()
                figure = measure_figure()
            else:
                figure = measure_figure()
                reference = measure_reference()
            self.add(figure, reference)
        self.summary()
        return self

    def header(self) -> None:
        """Print the title."""
        print(f"\n== {self.title} ==", flush=True)

    def add(self, figure: float, reference: float) -> None:
        """Record and print one round."""
        self.rounds.append((figure, reference))
        line = self._line(figure, reference, ratio(figure, reference))
        print(f"round {len(self.rounds)}: {line}", flush=True)

    def median(self) -> tuple[float, float, float]:
        """Median figure, median reference, median of the rounds' ratios."""
        figures, references = zip(*self.rounds, strict=True)
        ratios = [ratio(f, r) for f, r in self.rounds]
        return statistics.median(figures), statistics.median(references), statistics.median(ratios)

    def met(self) -> bool | None:
        """Does the median meet the goal (None without a goal)?"""
        if self.goal is None:
            return None
        figure, _, value = self.median()
        value = figure if self.goal_on == "figure" else value
        return value <= self.goal if self.lower_is_better else value >= self.goal

    def summary(self) -> None:
        """Print the medians and whether the goal is met."""
        line = f"median:  {self._line(*self.median())}"
        if self.goal is not None:
            sign = "<" if self.lower_is_better else ">="
            what = f"{self.figure} {sign} {number(self.goal)} {self.unit}"
            if self.goal_on == "ratio":
                what = f"ratio {sign} {self.goal:g}"
            line += f"   goal {what}: {'met' if self.met() else 'NOT met'}"
        print(line, flush=True)

    def _line(self, figure: float, reference: float, value: float) -> str:
        return (
            f"{self.figure} {number(figure)} {self.unit}   "
            f"{self.reference} {number(reference)} {self.unit}   ratio {value:.2f}"
        )


def ratio(figure: float, reference: float) -> float:
    """``figure / reference`` (infinite over a zero reference)."""
    return figure / reference if reference else float("inf")


def number(value: float) -> str:
    """A figure with the digits that matter."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.99 for p99) by the nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def arguments(doc: str | None, **defaults: Any) -> argparse.Namespace:
    """The command line of a benchmark: ``--rounds`` and its own options (``name=default``)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=defaults.pop("rounds", ROUNDS))
    for name, default in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return parser.parse_args()


# -- services -------------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(*, appendonly: bool = False) -> Iterator[EmbeddedRedis]:
    """A redis-server of the benchmark's own on a free port, stopped afterwards."""
    server = EmbeddedRedis(appendonly=appendonly)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A fresh folder for one round's files (journal, logs), removed afterwards; kept, and
    named, when the round fails, for its logs."""
    folder = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    try:
        yield folder
    except BaseException:
        print(f"(the round's files are kept in {folder})", file=sys.stderr)
        raise
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def journal(folder: Path, kind: str = "sqlite") -> Iterator[str]:
    """A migrated journal: a SQLite file in ``folder``, or a fresh PostgreSQL database
    (``kind="postgresql"``, on ``BRIDGE_BENCH_PG``) dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'journal.db'}"
        migrate(url)
        yield url
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bridge_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], folder: Path, workers: int = 2) -> Iterator[str]:
    """``app`` under gunicorn with deploy/gunicorn.conf.py, ``workers`` sync workers,
    on a free port; yields its base URL. ``bench/`` is on its Python path."""
    port = free_port()
    command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    command += ["-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{port}"]
    command += ["--pythonpath", f"{ROOT},{BENCH}", "--error-logfile", str(folder / "gunicorn.log")]
    with open(folder / "gunicorn.out", "ab") as out:
        process = subprocess.Popen(
            [*command, app], env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_idle(url: str, fast: float = 0.02, timeout: float = 60) -> None:
    """Wait until ``url``/health answers within ``fast`` seconds three times running."""
    deadline, streak = time.monotonic() + timeout, 0
    while streak < 3 and time.monotonic() < deadline:
        start = time.monotonic()
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{url}/health", timeout=5)
        streak = streak + 1 if time.monotonic() - start < fast else 0
        time.sleep(0.1)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{url}/health", timeout=1)
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered at {url} within {timeout:.0f} s")


# -- a tenant on a sandbox ------------------------------------------------------------------


@dataclass
class Stack:
    """Remarka's tenant on a CRM's sandbox (a :class:`~bridge.sandbox.Stand`), with a runtime
    on a private Redis and a migrated journal; ``env`` is what a child process needs to build
    the same runtime (``bridge worker``, the webhook app)."""

    crm: str
    stand: Stand
    runtime: Runtime
    env: dict[str, str]

    @property
    def sandbox(self) -> Any:
        """The stand's sandbox (its request log, tasks and rate limit)."""
        return self.stand.sandbox  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop the sandbox and close the runtime's connections."""
        self.stand.stop()
        self.runtime.redis.close()
        self.runtime.journal.engine.dispose()


def stack(
    crm: str,
    folder: Path,
    redis_url: str,
    journal_url: str,
    limit: dict[str, Any],
    **tenant: Any,
) -> Stack:
    """Start a stand of ``crm`` seeded for Remarka, its tenant's connection rate-limited by
    ``limit`` (``requests_per_second``, ``burst``, other connection settings); ``tenant``:
    tenant settings to change (``retry_intervals``...). The secrets go to the environment."""
    stand: Stand = crms.get(crm).stand_class()()
    stand.start()
    connection, secrets = stand.connection()
    os.environ.update(secrets)
    with contextlib.chdir(ROOT):
        config = demo.tenant_config(crm, {**connection, **limit}, folder)
    if tenant:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["tenants"][TENANT].update(tenant)
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    runtime = Runtime.build(str(config), journal_url, redis_url)
    stand.seed(runtime.settings.tenants[TENANT])
    env = {"BRIDGE_CONFIG": str(config), "BRIDGE_JOURNAL_URL": journal_url, "REDIS_URL": redis_url}
    env |= {**secrets, "BRIDGE_SPOOL": str(folder / "spool")}
    made = Stack(crm, stand, runtime, env)
    AUTHORIZE.get(crm, lambda s: None)(made)
    return made


def _authorize_amocrm(made: Stack) -> None:
    # the integration's OAuth install, without subscribing a hook (stand.connect does both)
    from bridge.crms.amocrm.commands import authorize

    authorize(made.runtime, TENANT, made.sandbox.issue_code())


AUTHORIZE: dict[str, Callable[[Stack], None]] = {"amocrm": _authorize_amocrm}
"""What a CRM's tenant needs before the bridge may call it (beyond its secrets)."""


def lost_deals(made: Stack, n: int) -> list[str]:
    """``n`` deals moved to ``lost`` without a refusal reason: each event about one makes
    the bridge create a task (rule refusal-needs-reason). Made before any hook is
    subscribed, so that the sandbox posts nothing."""
    ids = open_deals(made, n)
    for deal_id in ids:
        made.stand.update_record("deal", deal_id, stage="lost", fields={})
    return ids


def open_deals(made: Stack, n: int) -> list[str]:
    """``n`` deals in the meeting stage, made before any hook is subscribed."""
    return [made.stand.add_record("deal", f"Ремонт {i}", "meeting", MANAGER) for i in range(n)]


def admit(made: Stack, ids: list[str], tag: str = "") -> None:
    """Put an update event of each deal in the tenant's stream, as the ingress does."""
    for deal_id in ids:
        item = Incoming(
            tenant=TENANT,
            crm=made.crm,
            source="bench",
            type="record.updated",
            kind="deal",
            record_id=deal_id,
            dedup_key=f"bench:{deal_id}:{tag}",
            payload={},
        )
        made.runtime.queue.admit(TENANT, item.dedup_key, fields_of(item))


def calls(made: Stack, ids: list[str]) -> None:
    """A completed outgoing call on each deal, its event put in the tenant's stream as its
    CRM's hook would give it (each asks rule contact-ends-with-next-step for the next step)."""
    for deal_id in ids:
        call = made.stand.add_call("deal", deal_id, incoming=False, completed=True)
        item = CALL_EVENT[made.crm](made.crm, deal_id, call)
        made.runtime.queue.admit(TENANT, item.dedup_key, fields_of(item))


def _bitrix24_call(crm: str, deal_id: str, activity: str) -> Incoming:
    # ONCRMACTIVITYUPDATE names the activity only (D:api-reference/crm/timeline/activities/
    # events/on-crm-activity-update.md)
    return Incoming(
        **{"tenant": TENANT, "crm": crm, "source": "ONCRMACTIVITYUPDATE"},
        **{"type": "activity.updated", "kind": "", "record_id": "", "subject": activity},
        **{"dedup_key": f"bench:activity:{activity}", "payload": {}},
    )


def _amocrm_call(crm: str, deal_id: str, note: str) -> Incoming:
    # a note hook names the lead but not its kind (D:crm_platform/webhooks-api)
    return Incoming(
        **{"tenant": TENANT, "crm": crm, "source": "leads[note]"},
        **{"type": "activity.created", "kind": "", "record_id": deal_id, "subject": note},
        **{"dedup_key": f"bench:note:{note}", "payload": {}},
    )


CALL_EVENT: dict[str, Callable[[str, str, str], Incoming]] = {
    "bitrix24": _bitrix24_call,
    "amocrm": _amocrm_call,
}
"""The event a CRM's hook gives for a call logged on a deal, as its receiver parses it."""


def tasks_per_deal(made: Stack) -> Counter[str]:
    """How many tasks each deal got (by deal id)."""
    return Counter(
        task.record.removeprefix("deal ") for task in made.stand.tasks() if task.what == "task"
    )


def http_requests(made: Stack, since: int = 0) -> Counter[str]:
    """The HTTP requests the sandbox answered after the ``since``-th, by method (and path)."""
    return Counter(
        " ".join(filter(None, (entry["method"], re.sub(r"/\d+", "/{id}", entry.get("path", "")))))
        for entry in made.sandbox.requests_log[since:]
        if not entry.get("batch")  # a Bitrix24 batch's commands ride in its one request
    )


def nothing(*args: Any) -> None:
    """The empty job of rq's references (its arguments only make its payload realistic)."""
