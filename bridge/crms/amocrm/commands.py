"""The commands amoCRM adds to ``bridge``: ``bridge amocrm-auth CODE --tenant NAME``."""

from __future__ import annotations

import sys
from typing import Any

import click

from bridge.crms.amocrm import AmoCRM
from bridge.errors import BridgeError, ConfigError


def authorize(rt: Any, tenant_name: str, code: str) -> str:
    """Store the pair a code gives, resume the tenant, and put back in the queue its events
    and timers that ran out of retries while it was paused.

    Args:
        rt: the process's runtime (:class:`bridge.runtime.Runtime`).

    Raises:
        ConfigError: no such amoCRM tenant, or it uses a long-lived token.
        AuthError: amoCRM refused the code (expired after 20 minutes, or already used).
    """
    tenant = rt.tenant(tenant_name)
    if tenant is None or tenant.config.crm != AmoCRM.name:
        raise ConfigError([f"no amoCRM tenant {tenant_name!r} in {rt.settings.path}"])
    rt.connector(tenant).authorize(code)
    count = rt.resume(tenant_name)
    return f"amoCRM tokens of {tenant_name} saved; {count} waiting event(s) put back in the queue"


@click.command("amocrm-auth")
@click.argument("code")
@click.option("--tenant", required=True, help="The amoCRM tenant of the bridge's config.")
@click.option("--config", "path", default=None, help="Config file (default: $BRIDGE_CONFIG).")
@click.pass_obj
def amocrm_auth(host: Any, code: str, tenant: str, path: str | None) -> None:
    """Exchange an amoCRM authorization code for tokens; resume a paused tenant."""
    try:
        click.echo(authorize(host.runtime(path), tenant, code))
    except BridgeError as exc:
        click.echo(f"amocrm-auth: {exc}", err=True)
        sys.exit(1)
