"""The Flask app factory: config loaded once, one blueprint per concern."""

from __future__ import annotations

from typing import Any

from flask import Flask

from bridge import admin, crms, probes
from bridge.crms.receive import GATE
from bridge.ingress import Gate, Unavailable, unavailable
from bridge.masking import install_log_redaction
from bridge.runtime import Runtime
from bridge.spool import Replayer


def create_app(test_config: dict[str, Any] | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the webhook server.

    Args:
        test_config: Flask settings to apply (``BRIDGE_CONFIG``, ``BRIDGE_JOURNAL_URL``,
            ``REDIS_URL`` are read from it before the environment).
        runtime: an already built runtime (the demo and tests share one with the worker).
    """
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=1024 * 1024)
    app.config.from_prefixed_env("BRIDGE")
    if test_config:
        app.config.update(test_config)
    install_log_redaction()
    rt = runtime or Runtime.build(
        app.config.get("BRIDGE_CONFIG"),
        app.config.get("BRIDGE_JOURNAL_URL"),
        app.config.get("REDIS_URL"),
    )
    app.extensions["bridge"] = rt
    gate = app.extensions[GATE] = Gate(rt)
    Replayer.ensure(gate.spool, gate.replay_spool)
    app.register_error_handler(Unavailable, unavailable)
    for crm in crms.every():
        app.register_blueprint(crm.blueprint())
    admin.install(app, rt)
    app.register_blueprint(probes.bp)
    return app
