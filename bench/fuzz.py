"""100,000 hostile bodies per CRM at the webhooks: 5xx answers, refusals, events queued from a
refused body, bodies per second.

Remarka's tenant on each CRM's stand (bench/harness.py), the webhook app in process (Flask's
test client: the figure is the app's own cost, no HTTP server in front), a private Redis and a
migrated SQLite journal. The bodies are the suite's (bridge/sandbox/hostile.py): each CRM's
documented body (its sandbox's hostile.py) under zero to three mutations (keys 1,000 brackets
deep, ids ``²`` or 300 digits, 30,000 keys, 1 MiB, raw bytes, other content types, wrong
secrets), from a seeded ``random.Random`` so that a run can be repeated. No worker runs: a
stream only grows, so what a refused body queued would show as a longer stream. The bar: 0
answers 5xx, 0 events queued from a refused body, 0 queued ids a worker cannot read as a number.

Run: .venv/bin/python bench/fuzz.py [--bodies 100000] [--seed 8] [--crms bitrix24,amocrm]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import harness
import redis

from bridge import queue
from bridge.app import create_app
from bridge.crms.amocrm.sandbox.hostile import target as amocrm_hook
from bridge.crms.bitrix24.sandbox.hostile import target as bitrix24_hook
from bridge.sandbox import hostile

ID = re.compile(r"[0-9]{1,18}")
logging.getLogger("bridge.ingress").setLevel(logging.ERROR)  # a refusal is a figure here, no line


@dataclass
class Tally:
    """What one CRM's run counted."""

    crm: str
    bodies: int = 0
    accepted: int = 0
    rejected: int = 0
    server_errors: int = 0
    queued_from_rejected: int = 0
    unreadable_ids: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failing: Counter[str] = field(default_factory=Counter)
    """The mutations of the bodies that broke a bar (5xx, queued when refused, bad id)."""

    def line(self) -> str:
        """The figures, one line."""
        rate = self.bodies / self.seconds if self.seconds else 0.0
        return (
            f"{self.crm:9} bodies {self.bodies:7d}  5xx {self.server_errors}  rejected "
            f"{self.rejected}  accepted {self.accepted}  queued from rejected "
            f"{self.queued_from_rejected}  unreadable ids {self.unreadable_ids}  "
            f"{rate:,.0f} bodies/s  statuses {dict(sorted(self.statuses.items()))}"
        )


def target(made: harness.Stack) -> hostile.Target:
    """The hook of the stack's tenant, with its real secret."""
    tenant = made.runtime.tenant(harness.TENANT)
    if made.crm == "bitrix24":
        return bitrix24_hook(tenant.name, tenant.secret("application_token"))
    account = int(tenant.config.connection["account_id"])
    return amocrm_hook(tenant.name, tenant.secret("webhook_secret"), account)


def run(made: harness.Stack, bodies: int, seed: int) -> Tally:
    """Post ``bodies`` hostile bodies to the stack's hook and count what came back."""
    client = create_app(runtime=made.runtime).test_client()
    hook, conn = target(made), made.runtime.redis
    stream = queue.stream_key(hook.tenant)
    rnd, tally = random.Random(seed), Tally(made.crm)
    started = time.perf_counter()
    for _ in range(bodies):
        sent = hostile.hostile(hook, rnd)
        last = conn.xrevrange(stream, count=1)
        headers = {"Content-Type": sent.content_type} if sent.content_type else {}
        status = client.post(sent.path, data=sent.body, headers=headers).status_code
        _count(tally, sent, status, _added(conn, stream, last))
    tally.seconds = time.perf_counter() - started
    return tally


def _added(conn: redis.Redis, stream: str, last: list) -> list[dict]:
    since = f"({last[0][0].decode()}" if last else "-"
    return [json.loads(f[b"e"]) for _, f in conn.xrange(stream, min=since)]


def _count(tally: Tally, sent: hostile.Post, status: int, added: list[dict]) -> None:
    tally.bodies += 1
    tally.statuses[status] += 1
    broke = status >= 500
    tally.server_errors += status >= 500
    if status == 200:
        tally.accepted += 1
    else:
        tally.rejected += 1
        tally.queued_from_rejected += bool(added)
        broke |= bool(added)
    for entry in added:
        ids = [entry["record_id"], *([entry["subject"]] if entry["subject"] else [])]
        bad = not all(ID.fullmatch(i) for i in ids)
        tally.unreadable_ids += bad
        broke |= bad
    if broke:
        tally.failing["+".join(sent.mutations) or "valid"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--crms", default="bitrix24,amocrm")
    args = parser.parse_args()
    tallies = []
    with harness.private_redis() as server, harness.workdir() as folder:
        for crm in args.crms.split(","):
            (folder / crm).mkdir()
            with harness.journal(folder / crm) as url:
                made = harness.stack(crm, folder / crm, server.url, url, harness.UNLIMITED)
                try:
                    tallies.append(run(made, args.bodies, args.seed))
                finally:
                    made.close()
            print(tallies[-1].line(), flush=True)
            if tallies[-1].failing:
                print(f"  broke the bar: {dict(tallies[-1].failing.most_common(10))}")
    bad = sum(t.server_errors + t.queued_from_rejected + t.unreadable_ids for t in tallies)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
