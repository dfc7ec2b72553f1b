"""Messenger messages (the ``notify`` action) through apprise: one library, dozens of services.

A tenant names its channels in ``bridge.yaml`` (``channels: {team: {url_env: TEAM_CHAT_URL}}``);
the apprise URL itself (``tgram://<bot token>/<chat id>``, ``whatsapp://...``, ``json://host/``)
carries the credentials, so it lives in the environment or the secrets file, never in YAML,
and never in an error message or a log line. A channel that writes to a person chosen per
message (the client's WhatsApp) has ``{to}`` in its URL, filled from the action's ``to``.

Apprise reports only success or failure: a failure is taken as transient (the messenger may be
down), so the job retries with the tenant's intervals and the journal keeps the last error.
A channel whose URL is not set fails its message alone, permanently, with the variable to set
(the event's other actions still act; ``bridge replay`` sends it once the URL is there):
``bridge validate`` names the missing variable before the bridge starts.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import apprise

from bridge.actions import Notify
from bridge.config import read_secret
from bridge.errors import ConfigError, PermanentError, TransientError

if TYPE_CHECKING:
    from bridge.config import Tenant

# apprise logs each delivery at INFO with the service's host and path; keep it to failures
logging.getLogger("apprise").setLevel(logging.WARNING)


def send(tenant: Tenant, message: Notify, signature: str = "") -> dict[str, Any]:
    """Deliver one message to the tenant's channel, ``signature`` (if any) at its end.

    Returns:
        What the journal keeps: the channel's name (never its URL).

    Raises:
        PermanentError: the channel is unknown, its URL is not set or not understood.
        TransientError: the messenger did not accept the message (retried).
    """
    url = _url(tenant, message)
    app = apprise.Apprise()
    if not app.add(url):
        scheme = url.partition("://")[0]
        raise PermanentError(
            f"channel {message.channel}: apprise does not understand its URL ({scheme}://...); "
            "see https://github.com/caronc/apprise/wiki for the forms"
        )
    body = f"{message.text}\n\n{signature.strip()}" if signature.strip() else message.text
    if not app.notify(body=body, title=message.title or ""):
        raise TransientError(f"channel {message.channel}: the messenger refused the message")
    return {"channel": message.channel}


def _url(tenant: Tenant, message: Notify) -> str:
    channel = tenant.config.channels.get(message.channel)
    if channel is None:
        raise PermanentError(f"tenant {tenant.name} has no channel {message.channel!r}")
    try:
        url = read_secret(channel.url_env)
    except ConfigError as exc:
        raise PermanentError(f"channel {message.channel}: " + "; ".join(exc.problems)) from None
    if "{to}" in url:
        if not message.to:
            raise PermanentError(f"channel {message.channel} needs a recipient (`to:`)")
        return url.replace("{to}", quote(_recipient(message.to), safe="+@"))
    return url


def _recipient(to: str) -> str:
    """A phone as messengers take it (``+7 916 000-00-00`` -> ``+79160000000``); a chat id
    (Telegram's ``-100123...``) or a user name as it is."""
    text = to.strip()
    spaced = re.search(r"[\s()]", text) is not None
    if re.fullmatch(r"\+?[\d\s()-]{7,}", text) and (text.startswith("+") or spaced):
        digits = re.sub(r"\D", "", text)
        return f"+{digits}" if text.startswith("+") else digits
    return text
