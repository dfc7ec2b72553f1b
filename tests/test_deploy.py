"""The deploy files start commands that exist: every `bridge X` they name is a command of the
CLI, and gunicorn's config file is one gunicorn can load."""

from __future__ import annotations

import re
import runpy

from bridge.cli import cli
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
