"""TinyCRM's sandbox: deals, tasks and comments in memory, REST on loopback, webhooks posted
from a background thread (the shared Poster) like a real CRM would."""

from __future__ import annotations

import itertools
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, request

from bridge.sandbox.common import Post, Poster
from bridge.sandbox.server import LoopbackServer

API_KEY = "tiny-api-key"
SEMANTICS = {"won": "won", "lost": "lost"}  # every other stage is open


class TinySandbox:
    """A TinyCRM account on loopback."""

    def __init__(self) -> None:
        self.deals: dict[int, dict[str, Any]] = {}
        self.tasks: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.hooks: list[str] = []
        self._ids = itertools.count(1)
        self._poster = Poster("tinycrm-hooks", timeout=5)
        self._server = LoopbackServer(self._app())

    def start(self) -> TinySandbox:
        self._server.start()
        self._poster.start()
        return self

    def stop(self) -> None:
        self._poster.stop()
        self._server.stop()

    @property
    def base_url(self) -> str:
        return self._server.url

    def add_deal(self, title: str, stage: str, owner: str) -> int:
        deal_id = next(self._ids)
        self.deals[deal_id] = {"id": deal_id, "title": title, "owner": owner}
        self._change(deal_id, {"stage": stage}, "deal.created")
        return deal_id

    def update_deal(self, deal_id: int, changes: dict[str, Any]) -> None:
        self._change(deal_id, changes, "deal.changed")

    def wait_delivered(self) -> None:
        self._poster.wait(10)

    def _change(self, deal_id: int, changes: dict[str, Any], event: str) -> None:
        deal = self.deals[deal_id]
        deal.update(changes)
        deal["state"] = SEMANTICS.get(deal["stage"], "open")
        body = urlencode({"event": event, "deal_id": deal_id, "at": time.time_ns()})
        for url in self.hooks:
            self._poster.put(Post(url, body, {"event": event, "deal_id": deal_id}))

    def _app(self) -> Flask:
        app = Flask("tinycrm")

        @app.before_request
        def _key() -> None:
            if request.headers.get("X-Api-Key") != API_KEY:
                abort(401)

        @app.get("/api/deals/<int:deal_id>")
        def deal(deal_id: int) -> Any:
            return jsonify(self.deals.get(deal_id) or abort(404))

        @app.get("/api/deals")
        def deals() -> Any:
            wanted = request.args.to_dict()
            found = [
                d for d in self.deals.values() if all(str(d.get(k)) == v for k, v in wanted.items())
            ]
            return jsonify(found)

        @app.patch("/api/deals/<int:deal_id>")
        def update(deal_id: int) -> Any:
            self._change(deal_id, request.get_json(), "deal.changed")
            return jsonify(self.deals[deal_id])

        @app.post("/api/tasks")
        def add_task() -> Any:
            self.tasks.append({**request.get_json(), "id": len(self.tasks) + 1})
            return jsonify(self.tasks[-1])

        @app.get("/api/tasks")
        def list_tasks() -> Any:
            return jsonify([t for t in self.tasks if str(t["deal_id"]) == request.args["deal_id"]])

        @app.post("/api/comments")
        def add_comment() -> Any:
            self.comments.append(request.get_json())
            return jsonify({"id": len(self.comments)})

        return app
