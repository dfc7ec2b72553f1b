"""`bridge validate` names every secret the configuration needs that is not set: the file, line,
setting, tenant and the variable to set; never a secret's value."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from tests.bitrix24_env import ROOT

B24 = [
    (tenant, f"{tenant.upper().replace('-', '_')}_B24_{what}", key)
    for tenant in ("remarka", "monuments", "fireworks", "service", "autoparts")
    for what, key in (("WEBHOOK_URL", "webhook_url_env"), ("APP_TOKEN", "application_token_env"))
]
"""(tenant, variable, setting) of the example configuration's Bitrix24 portals."""
SECRETS = [*B24, ("fireworks-1c", "FIREWORKS_1C_PASSWORD", "password_env")]
CHANNELS = [
    ("fireworks", "team", "FIREWORKS_TEAM_CHAT_URL"),
    ("fireworks", "client_whatsapp", "FIREWORKS_WHATSAPP_URL"),
    ("fireworks-1c", "team", "FIREWORKS_TEAM_CHAT_URL"),  # the same chat
]
"""(tenant, channel, variable) of the example fireworks tenants' messengers."""
VARIABLES = list(dict.fromkeys([v for _, v, _ in SECRETS] + [v for _, _, v in CHANNELS]))
"""Every secret the example configuration names, once."""
MISSING = len(SECRETS) + len(CHANNELS)
"""How many settings name a secret: each is said when its variable is not set."""


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example configuration, on a machine where no secret is set yet."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("BRIDGE_SECRETS_FILE", raising=False)
    return tmp_path / "config"


def validate(path: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", "--config", str(path), *options])
    return result.exit_code, result.output


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_each_missing_secret_names_file_line_setting_tenant_and_fix(config_dir: Path) -> None:
    config = config_dir / "bridge.yaml"
    code, out = validate(config)
    assert code == 0  # the files are right; the machine is not ready yet
    for tenant, variable, key in SECRETS:
        assert (
            f"{config}:{line_of(config, variable)}: tenants.{tenant}.connection.{key}: the secret "
            f"{variable} is not set: tenant {tenant} cannot run without it; export {variable}=... "
            f"or add the line {variable}=... to BRIDGE_SECRETS_FILE"
        ) in out
    for tenant, channel, variable in CHANNELS:  # the tenant runs; its messages fail alone
        assert re.search(
            rf"{re.escape(str(config))}:\d+: tenants\.{re.escape(tenant)}\.channels\.{channel}"
            rf"\.url_env: the secret {variable} is not set: the messages \(notify\) of tenant "
            rf"{re.escape(tenant)} to channel {channel} fail without it \(journaled with this "
            rf"reason; `bridge replay` sends them once it is set\); export {variable}=\.\.\.",
            out,
        ), out
    assert out.strip().endswith(
        f"configuration is valid, but {MISSING} secret(s) are not set (above): the "
        "bridge cannot run what needs them until they are"
    )


def test_strict_fails_until_every_secret_is_set(config_dir: Path) -> None:
    code, out = validate(config_dir / "bridge.yaml", "--strict")
    assert code == 1
    assert f"{MISSING} secret(s) are not set" in out


def test_secrets_from_the_environment_and_the_secrets_file_count_and_never_show(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {variable: f"s3cr3t-{i}-value" for i, variable in enumerate(VARIABLES)}
    names = list(values)
    for name in names[::2]:
        monkeypatch.setenv(name, values[name])
    file = tmp_path / "secrets.env"
    file.write_text("".join(f"{name}='{values[name]}'\n" for name in names[1::2]), "utf-8")
    monkeypatch.setenv("BRIDGE_SECRETS_FILE", str(file))
    code, out = validate(config_dir / "bridge.yaml", "--strict")
    assert code == 0, out
    assert out.splitlines()[-1] == "configuration is valid"
    assert "s3cr3t" not in out


def test_one_missing_secret_is_the_only_line(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in VARIABLES[1:]:
        monkeypatch.setenv(variable, "set")
    code, out = validate(config_dir / "bridge.yaml", "--strict")
    assert code == 1
    problems = [line for line in out.splitlines() if "is not set" in line]
    assert len(problems) == 1
    assert "tenants.remarka.connection.webhook_url_env: the secret REMARKA_B24_WEBHOOK_URL" in out


def test_a_secrets_file_that_does_not_exist_is_said(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in VARIABLES:
        monkeypatch.setenv(variable, "set")
    monkeypatch.setenv("BRIDGE_SECRETS_FILE", str(tmp_path / "nowhere.env"))
    code, out = validate(config_dir / "bridge.yaml", "--strict")
    assert code == 1
    assert (
        f"BRIDGE_SECRETS_FILE names {tmp_path / 'nowhere.env'}, which does not exist: create it "
        "(NAME=value lines) or unset BRIDGE_SECRETS_FILE"
    ) in out


def test_channels_tables_smtp_and_the_admin_pages_are_checked_too(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in VARIABLES:
        monkeypatch.setenv(variable, "set")
    for name in ("TG_URL", "SHEET_KEY", "SMTP_PASSWORD", "ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = config_dir / "bridge.yaml"
    text = config.read_text(encoding="utf-8")
    extra = (
        "    channels:\n      team: {url_env: TG_URL}\n"
        "    tables:\n      calls: {columns: [a], google_sheet: k1, credentials_env: SHEET_KEY}\n"
    )
    text = text.replace(
        "    roles:\n      engineer: petrov\n", extra + "    roles:\n      engineer: petrov\n", 1
    )
    text = text.replace(
        "      transport: outbox\n      templates: templates/email\n"
        "      signatures: templates/email/signatures-monuments.yaml\n",
        "      transport: smtp\n      templates: templates/email\n"
        "      signatures: templates/email/signatures-monuments.yaml\n"
        "      smtp: {host: mail.example, password_env: SMTP_PASSWORD}\n",
        1,
    )
    text += "admin:\n  secret_key_env: ADMIN_KEY\n  users: {}\n"
    config.write_text(text, encoding="utf-8")
    code, out = validate(config, "--strict")
    assert code == 1, out
    expected = [
        (
            "TG_URL",
            "tenants.remarka.channels.team.url_env",
            "the messages (notify) of tenant remarka to channel team fail",
        ),
        ("SHEET_KEY", "tenants.remarka.tables.calls.credentials_env", "tenant remarka"),
        ("SMTP_PASSWORD", "tenants.monuments.email.smtp.password_env", "tenant monuments"),
        ("ADMIN_KEY", "admin.secret_key_env", "the admin pages"),
    ]
    for variable, key, owner in expected:
        line = line_of(config, variable)
        assert re.search(
            rf"{re.escape(str(config))}:{line}: {re.escape(key)}: the secret {variable} is not "
            rf"set: ({re.escape(owner)} without it|{owner} cannot run without it)",
            out,
        ), out
    assert "4 secret(s) are not set" in out


def test_an_optional_secret_is_a_note(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "amocrm.yaml"
    text = (ROOT / "tests" / "fixtures" / "amocrm.yaml").read_text(encoding="utf-8")
    text = text.replace("../../config/", f"{ROOT}/config/")
    text = text.replace(
        "      webhook_secret_env: REMARKA_AMO_HOOK_SECRET\n",
        "      webhook_secret_env: REMARKA_AMO_HOOK_SECRET\n"
        "      refresh_token_env: REMARKA_AMO_REFRESH\n",
        1,
    )
    config.write_text(text, encoding="utf-8")
    for name in ("REMARKA", "AUTOPARTS"):
        monkeypatch.setenv(f"{name}_AMO_CLIENT_SECRET", "set")
        monkeypatch.setenv(f"{name}_AMO_HOOK_SECRET", "set")
    monkeypatch.delenv("REMARKA_AMO_REFRESH", raising=False)
    monkeypatch.delenv("BRIDGE_SECRETS_FILE", raising=False)
    code, out = validate(config, "--strict")
    assert code == 0, out
    assert (
        f"{config}:{line_of(config, 'REMARKA_AMO_REFRESH')}: tenants.remarka.connection."
        "refresh_token_env: note: REMARKA_AMO_REFRESH is not set (env var: a first refresh "
        "token, used only while none is stored)"
    ) in out
    assert out.splitlines()[-1] == "configuration is valid"
