"""A messenger on loopback: what the bridge's ``notify`` delivers, through apprise's ``json://``
target (https://github.com/caronc/apprise/wiki/Notify_Custom_JSON: a POST of ``{"version",
"title", "message", "type"}`` to the URL's host and path).

Each channel of a tenant gets the URL ``json://127.0.0.1:<port>/<channel>``, with ``/{to}``
after it for a channel whose messages name their recipient (the client's WhatsApp), so that
what arrives says which channel and whom it was sent to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, request

from bridge.sandbox.server import LoopbackServer


@dataclass(frozen=True)
class Delivered:
    """One message as the messenger got it."""

    channel: str
    to: str | None
    title: str
    text: str


class Messengers:
    """An HTTP receiver on loopback standing for every messenger of a tenant."""

    def __init__(self) -> None:
        self.got: list[Delivered] = []
        app = Flask("messengers")

        @app.post("/<channel>")
        @app.post("/<channel>/<to>")
        def receive(channel: str, to: str | None = None) -> tuple[str, int]:
            body = request.get_json()
            self.got.append(Delivered(channel, to, body.get("title", ""), body["message"]))
            return "", 200

        self.server = LoopbackServer(app)

    def start(self) -> Messengers:
        """Start serving (a free port)."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()

    def url(self, channel: str, *, to: bool = False) -> str:
        """The apprise URL of ``channel`` here (with ``{to}`` for a per-message recipient)."""
        base = self.server.url.replace("http://", "json://") + f"/{channel}"
        return base + "/{to}" if to else base

    def urls(self, channels: dict[str, str], with_recipient: Iterable[str]) -> dict[str, str]:
        """Environment variable -> URL for a tenant's channels (name -> ``url_env``)."""
        personal = set(with_recipient)
        return {env: self.url(name, to=name in personal) for name, env in channels.items()}
