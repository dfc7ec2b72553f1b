"""The webhook ingress under gunicorn, against a bare Flask app parsing the same form.

Both apps run under the same gunicorn settings (deploy/gunicorn.conf.py, ``-w 2``, sync
workers, ``PROMETHEUS_MULTIPROC_DIR`` set as in production) and the same load: Bitrix24's
``ONCRMDEALUPDATE`` as its sandbox posts it, each request with a deal id of its own (so that no
request is folded as a duplicate). The bridge runs Remarka's Bitrix24 tenant (its secrets in the
environment), a migrated SQLite journal and a private Redis; every round checks that the stream
holds an entry for each request answered.

1. Requests per second, ``wrk -t2 -c32`` (closed loop) with a Lua script numbering the deals.
2. p50 and p99 at half the bare app's rate, from an open-loop generator (bench/openloop.py)
   that sends at fixed times and measures from each request's scheduled time.

   Then the same at half the bridge's own rate, where it is as busy as the bare app was.

Run: .venv/bin/python bench/ingress.py [--seconds 10] [--rounds 3] [--rate 0 (half the bare)]
     [--web-workers 2]
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path

import harness
import openloop

from bridge import formdata, queue
from bridge.crms.bitrix24.sandbox import Bitrix24Sandbox

PATH = f"/hooks/bitrix24/{harness.TENANT}"
MARK = "987654321"
WRK = ["-t2", "-c32"]
THROUGHPUT_GOAL = 0.7
P99_GOAL = 10.0
# wrk's Lua: each thread numbers its own deals from its own offset
LUA = """
local threads = 0
function setup(thread)
  thread:set("next_id", 1000000000 * (threads + 1) + OFFSET)
  threads = threads + 1
end
function request()
  next_id = next_id + 1
  return wrk.format("POST", "PATH", {["Content-Type"] = "application/x-www-form-urlencoded"},
                    [[PREFIX]] .. next_id .. [[SUFFIX]])
end
"""


def body_parts(token: str) -> tuple[str, str]:
    """An ``ONCRMDEALUPDATE`` body as the Bitrix24 sandbox posts it, split at the deal id."""
    events = Bitrix24Sandbox(application_token=token).events
    payload = events.payload("ONCRMDEALUPDATE", MARK, 1)
    prefix, _, suffix = formdata.build_query(payload).partition(MARK)
    return prefix, suffix


def wrk(url: str, parts: tuple[str, str], seconds: int, offset: int, folder: Path) -> dict:
    """One wrk run; returns requests/s, requests answered and non-2xx answers."""
    script = LUA.replace("PATH", PATH).replace("PREFIX", parts[0]).replace("SUFFIX", parts[1])
    path = folder / "post.lua"
    path.write_text(script.replace("OFFSET", str(offset)), encoding="utf-8")
    command = [shutil.which("wrk") or "/usr/bin/wrk", *WRK, f"-d{seconds}s", "-s", str(path)]
    out = subprocess.run([*command, url + PATH], capture_output=True, text=True, check=True).stdout
    found = {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "answered": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx.*?(\d+)", out)) else 0,
        "socket_errors": m.group(0) if (m := re.search(r"Socket errors:.*", out)) else "",
    }
    if found["non_2xx"]:
        raise AssertionError(f"{found['non_2xx']} answers were not 2xx:\n{out}")
    return found


class Ingress:
    """The two apps under gunicorn, and the measurements of one round on either."""

    def __init__(self, bridge_url: str, bare_url: str, made: harness.Stack, folder: Path) -> None:
        self.urls = {"bridge": bridge_url, "bare": bare_url}
        self.redis = made.runtime.redis
        self.parts = body_parts(made.sandbox.application_token)
        self.folder = folder
        self.offset = 0
        self.rates: dict[str, list[float]] = {"bridge": [], "bare": []}

    def quiet(self) -> None:
        """Wait until both apps answer at once: an overloaded run leaves a backlog of
        connections that would otherwise share the cores with the next run."""
        for url in self.urls.values():
            harness.wait_idle(url)

    def throughput(self, app: str, seconds: int) -> float:
        """Requests per second of ``app`` under wrk (the bridge's entries checked)."""
        self.quiet()
        self.redis.flushall()
        self.offset += 10_000_000
        found = wrk(self.urls[app], self.parts, seconds, self.offset, self.folder)
        if app == "bridge":
            self._check(found["answered"])
        self.rates[app].append(found["rate"])
        if found["socket_errors"]:
            print(f"  ({app}: wrk's {found['socket_errors']})")
        return found["rate"]

    def _check(self, answered: int) -> None:
        queued = self.redis.xlen(queue.stream_key(harness.TENANT))
        # wrk counts the answers it read; a request in flight at the end may be queued too
        if queued < answered:
            raise AssertionError(f"{answered} requests answered but {queued} events queued")

    def p99(self, app: str, rate: float, seconds: int) -> float:
        """p99 latency of ``app`` in ms at ``rate``, open loop."""
        self.quiet()
        self.redis.flushall()
        self.offset += 10_000_000
        base = self.offset
        result = openloop.run(self.urls[app] + PATH, self._body(base), rate, seconds)
        print(f"  {app}: {result.describe()}", flush=True)
        return result.p(0.99)

    def _body(self, base: int) -> Callable[[int], bytes]:
        prefix, suffix = self.parts
        return lambda i: f"{prefix}{base + i}{suffix}".encode()


def main() -> None:
    args = harness.arguments(__doc__, seconds=10, rate=0.0, web_workers=2)
    with (
        harness.workdir() as folder,
        harness.private_redis() as server,
        harness.journal(folder) as url,
    ):
        (folder / "metrics").mkdir()
        made = harness.stack("bitrix24", folder, server.url, url, {})
        env = {**made.env, "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
        try:
            with (
                harness.gunicorn("webhooks:create_app()", env, folder, args.web_workers) as bridge,
                harness.gunicorn("bare_app:create_app()", {}, folder, args.web_workers) as bare,
            ):
                measure(Ingress(bridge, bare, made, folder), args)
        finally:
            made.close()


def measure(ingress: Ingress, args) -> None:  # noqa: ANN001 - argparse's namespace
    """The comparisons, printed."""
    harness.Comparison(
        f"ingress requests/s, gunicorn -w {args.web_workers} sync, wrk {' '.join(WRK)} "
        f"{args.seconds}s, unique deal ids",
        "bridge",
        "bare Flask",
        "req/s",
        goal=THROUGHPUT_GOAL,
    ).run(
        lambda: ingress.throughput("bridge", args.seconds),
        lambda: ingress.throughput("bare", args.seconds),
        args.rounds,
    )
    rates = [(args.rate or statistics.median(ingress.rates["bare"]) / 2, "half the bare app's")]
    if not args.rate:  # and where the bridge itself is half busy, to tell load from cost
        rates.append((statistics.median(ingress.rates["bridge"]) / 2, "half the bridge's"))
    for rate, which in rates:
        harness.Comparison(
            f"ingress p99 latency at {rate:,.0f} requests/s ({which} median under wrk), "
            f"open loop, {args.seconds}s",
            "bridge",
            "bare Flask",
            "ms",
            goal=P99_GOAL,
            goal_on="figure",
            lower_is_better=True,
        ).run(
            lambda r=rate: ingress.p99("bridge", r, args.seconds),
            lambda r=rate: ingress.p99("bare", r, args.seconds),
            args.rounds,
        )


if __name__ == "__main__":
    main()
