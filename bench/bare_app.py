"""The reference of bench/ingress.py: a bare Flask app that parses the same form on the same
path and answers as the bridge does, doing nothing else.

``gunicorn 'bare_app:create_app()'`` with ``bench/`` on the Python path.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    """The app: one hook route, and ``/health`` for the harness to wait on."""
    app = Flask(__name__)

    @app.post("/hooks/bitrix24/<tenant>")
    def receive(tenant: str) -> ResponseReturnValue:
        form = request.form.to_dict(flat=False)
        return jsonify(status="queued" if form else "empty", entry=None), 200

    @app.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok")

    return app
