"""The config a sandbox runs a tenant on: the tenant's own, pointed at the sandbox.

The tenant's block is copied from its config file with its files made absolute, its
``connection`` pointed at the sandbox (a tenant on its own CRM keeps its other settings: 1C's
encoding and users' e-mails, say), and e-mail sent to an outbox folder (nothing leaves the
machine). ``bridge demo`` and ``bridge try`` both run on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bridge import yamlfile


def sandbox_config(config: Path, connections: dict[str, dict[str, Any]], workdir: Path) -> Path:
    """Write ``workdir/bridge.yaml``: tenants of ``config``, each on its own CRM's sandbox.

    Args:
        config: the tenants file the tenants come from.
        connections: each tenant's name there -> its sandbox's ``connection`` block.
        workdir: where the config, and the e-mail outbox, go.

    Returns:
        The written config file.
    """
    blocks = {name: tenant_block(config, name, c, workdir) for name, c in connections.items()}
    return write_config(workdir, blocks)


def tenant_block(
    config: Path,
    tenant: str,
    connection: dict[str, Any],
    workdir: Path,
    **overrides: Any,
) -> dict[str, Any]:
    """One tenant's block of ``config`` on a sandbox.

    Args:
        config: the tenants file the tenant comes from.
        tenant: its name there.
        connection: the sandbox's ``connection`` block; on the tenant's own CRM, its keys
            replace those of the tenant's block, whose other settings are kept.
        workdir: where the e-mail outbox goes.
        overrides: keys of the tenant to replace (``crm``, ``mapping``...), paths relative
            to ``config``'s folder.
    """
    base = config.resolve().parent
    block = dict(yamlfile.load(config).data["tenants"][tenant])
    if overrides.get("crm", block["crm"]) == block["crm"]:
        connection = {**(block.get("connection") or {}), **connection}
    block.update(overrides, connection=connection)
    block["mapping"] = str(base / block["mapping"]) if block.get("mapping") else None
    block["regulations"] = [str(base / path) for path in block["regulations"]]
    if block.get("email"):
        email = dict(block["email"])
        for key in ("templates", "signatures"):
            if email.get(key):
                email[key] = str(base / email[key])
        email.setdefault("templates", str(base / "templates" / "email"))
        email.update(transport="outbox", outbox=str(workdir / "outbox"))
        email.pop("smtp", None)
        block["email"] = email
    return block


def write_config(workdir: Path, tenants: dict[str, dict[str, Any]]) -> Path:
    """Write ``workdir/bridge.yaml`` holding ``tenants`` (name -> block); returns its path."""
    path = workdir / "bridge.yaml"
    text = yaml.safe_dump({"version": 1, "tenants": tenants}, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path
