"""How many Bitrix24 webhooks per second the ingress accepts: parse, authenticate, dedupe in
Redis, journal in SQLite, enqueue in rq. Runs the Flask app in-process (no HTTP server) so
the figure is the bridge's own cost. Needs Redis (REDIS_URL, 127.0.0.1:6379, or embedded).

Run: .venv/bin/python bench/bench_ingress.py   (a few seconds; prints one line)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import redis

from bridge import formdata, services
from bridge.app import create_app
from bridge.journal import migrate
from bridge.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 3.0
DB = 14  # a Redis db of its own, flushed before and after


def main() -> None:
    os.environ.setdefault("REMARKA_B24_WEBHOOK_URL", "http://127.0.0.1:9/rest/1/bench/")
    os.environ.setdefault("REMARKA_B24_APP_TOKEN", "bench-token")
    url = f"{services.redis_url().rsplit('/', 1)[0]}/{DB}"
    redis.Redis.from_url(url).flushdb()
    journal = f"sqlite:///{tempfile.mkdtemp()}/journal.db"
    migrate(journal)
    rt = Runtime.build(str(ROOT / "config" / "bridge.yaml"), journal, url)
    client = create_app(runtime=rt).test_client()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        body = formdata.build_query(
            {
                "event": "ONCRMDEALUPDATE",
                "data": {"FIELDS": {"ID": str(count)}},
                "ts": "1766047124",
                "auth": {"domain": "bench.bitrix24.ru", "application_token": "bench-token"},
            }
        )
        assert client.post("/hooks/bitrix24/remarka", data=body, headers=headers).status_code == 200
        count += 1
    elapsed = time.perf_counter() - start
    redis.Redis.from_url(url).flushdb()
    print(f"ingress: {count / elapsed:,.0f} webhooks/s ({1000 * elapsed / count:.2f} ms each)")


if __name__ == "__main__":
    main()
