"""The deploy files start commands that exist: every `bridge X` they name is a command of the
CLI, gunicorn's config file is one gunicorn can load, and its access log masks secrets."""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bridge.cli import cli
from bridge.journal import migrate
from tests.amocrm_env import SECRETS, write_config
from tests.bitrix24_env import ROOT

DEPLOY = ROOT / "deploy"


def bridge_commands(text: str) -> list[str]:
    """``.../bin/bridge X``, ``name: bridge X`` (Procfile), ``IMAGE bridge X`` and
    ``"bridge", "X"`` (a Dockerfile's comments and exec form)."""
    pattern = r'(?:bin/bridge|^\w+: bridge|IMAGE bridge|"bridge", ") ?([a-z][\w-]*)'
    return re.findall(pattern, text, re.M)


def test_every_bridge_command_the_deploy_files_start_exists() -> None:
    files = [DEPLOY / "Procfile", DEPLOY / "Dockerfile", *sorted((DEPLOY / "systemd").glob("*"))]
    named = {c for f in files for c in bridge_commands(f.read_text(encoding="utf-8"))}
    assert {"migrate", "worker", "cron"} <= named
    assert named <= set(cli.commands), named - set(cli.commands)


def test_gunicorns_config_loads() -> None:
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["bind"] and settings["workers"] >= 1
    assert callable(settings["on_starting"]) and callable(settings["child_exit"])


def test_gunicorns_access_log_masks_hook_secrets_phones_and_emails(
    tmp_path: Path, redis_url: str
) -> None:
    secret, phone, email = SECRETS["remarka"], "+79123456789", "ivan.petrov@example.com"
    access = tmp_path / "access.log"
    env = {
        **os.environ,
        "BRIDGE_CONFIG": str(write_config(tmp_path, {})),
        "BRIDGE_JOURNAL_URL": f"sqlite:///{tmp_path / 'journal.db'}",
        "REDIS_URL": redis_url,
        "REMARKA_AMO_CLIENT_SECRET": "unused",
        "REMARKA_AMO_HOOK_SECRET": secret,
        "AUTOPARTS_AMO_CLIENT_SECRET": "unused",
        "AUTOPARTS_AMO_HOOK_SECRET": "other-s3cr3t",
        "BRIDGE_BIND": f"127.0.0.1:{_free_port()}",
        "BRIDGE_ACCESS_LOG": str(access),
    }
    migrate(env["BRIDGE_JOURNAL_URL"])
    base = f"http://{env['BRIDGE_BIND']}"
    with _gunicorn(env) as server:
        hook = f"{base}/hooks/amocrm/remarka"
        body = {"account[id]": "30000001", "leads[status][0][id]": "5"}
        assert requests.post(f"{hook}/{secret}", data=body, timeout=10).status_code == 200
        assert requests.post(f"{hook}/{secret}x", data=body, timeout=10).status_code == 403
        query = {"phone": phone, "email": email}
        assert requests.get(f"{base}/health", params=query, timeout=10).ok
    lines = access.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 3  # _gunicorn's own probes of /health, then ours
    assert any('"POST /hooks/amocrm/remarka/*** HTTP/1.1" 200' in line for line in lines)
    assert any('"POST /hooks/amocrm/remarka/*** HTTP/1.1" 403' in line for line in lines)
    logged = access.read_text(encoding="utf-8") + server.stderr
    for leak in (secret, phone, email, "ivan.petrov%40example.com", "%2B79123456789"):
        assert leak not in logged


@dataclass
class _Server:
    stderr: str = ""


@contextlib.contextmanager
def _gunicorn(env: dict[str, str]) -> Iterator[_Server]:
    """The webhook app under deploy/gunicorn.conf.py; its stderr (the error log) once stopped."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "-c", str(DEPLOY / "gunicorn.conf.py"), "webhooks:create_app()"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = _Server()
    try:
        _wait_http(f"http://{env['BRIDGE_BIND']}")
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        server.stderr = process.communicate(timeout=30)[1].decode(errors="replace")


def _wait_http(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=5).ok:
                return
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer at {base} within 60 s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
