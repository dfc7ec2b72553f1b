"""A stand-in 1C infobase: customer orders, its "exchange with site" client, and OData.

1C is the HTTP client of the exchange, so the stand-in does what 1C does on its schedule
(P:, shared/reference/onec.md §1.2): ``checkauth`` with HTTP Basic, ``init``, the changed
orders as one CommerceML file POSTed in chunks of the site's ``file_limit`` (zipped when the
site says ``zip=yes`` and the node is set to compress), ``import``, ``query`` (the orders the
site changed, taken into the infobase: comment and requisites), ``success``. Every answer is
kept in :attr:`OneCSandbox.log`. Its OData (``/odata/standard.odata/Document_ЗаказКлиента``)
reads and PATCHes orders with ``DataVersion`` and ``If-Match`` (§3.1); :meth:`change_after_read`
plays a manager who edits the order between the bridge's read and its write. The entity set
answers ``$filter`` on a date (``Date ge datetime'…'``), ``$orderby``, ``$top`` and ``$skip``
as 1C's does; the status is an enumeration's name (УТ 11's ``СтатусыЗаказовКлиентов``:
``ВРаботе``), the manager a reference with its presentation.
"""

from __future__ import annotations

import base64
import io
import re
import threading
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from flask import Flask, Response, jsonify, request

from bridge.crms.onec.sandbox.documents import SandboxOrder, package, returned
from bridge.sandbox.server import LoopbackServer

ENTITY = "Document_ЗаказКлиента"
FILTER = re.compile(r"^(\w+) (ge|gt) datetime'([0-9T:.-]+)'$")
"""The one kind of ``$filter`` the stand-in answers: a date property against a moment."""


@dataclass
class Step:
    """One request of an exchange and the site's answer."""

    mode: str
    status: int
    text: str
    body: bytes = b""


@dataclass
class ExchangeLog:
    """What one exchange did."""

    steps: list[Step] = field(default_factory=list)

    def answers(self, mode: str) -> list[str]:
        """The site's answers to a mode, in order."""
        return [s.text for s in self.steps if s.mode == mode]

    @property
    def ok(self) -> bool:
        """No step was answered ``failure``."""
        return not any(s.text.startswith("failure") for s in self.steps)


class OneCSandbox:
    """Orders of a stand-in infobase, pushed to a site and written by its OData clients."""

    def __init__(self, *, encoding: str = "windows-1251", container: bool = False) -> None:
        self.encoding, self.container = encoding, container
        self.orders: dict[str, SandboxOrder] = {}
        self.log: list[ExchangeLog] = []
        self.odata_log: list[tuple[str, str, int]] = []
        self._uploaded: dict[str, int] = {}
        self._after_read: dict[str, Callable[[SandboxOrder], None]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._app())

    def start(self) -> OneCSandbox:
        """Serve OData on loopback."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    @property
    def odata_url(self) -> str:
        """The published infobase's standard OData root."""
        return f"{self._server.url}/trade/odata/standard.odata"

    # -- the infobase ---------------------------------------------------------------------

    def add_order(self, number: str, date: datetime, **values: Any) -> SandboxOrder:
        """A new order (a GUID made for it)."""
        order = SandboxOrder(ref=str(uuid.uuid4()), number=number, date=date, **values)
        self.orders[order.ref] = order
        return order

    def change(self, ref: str, **values: Any) -> SandboxOrder:
        """A manager edits an order in 1C (its version moves on)."""
        with self._lock:
            order = self.orders[ref]
            for name, value in values.items():
                setattr(order, name, value)
            order.version += 1
            return order

    def change_after_read(self, ref: str, edit: Callable[[SandboxOrder], None]) -> None:
        """After the next OData read of ``ref``, a manager edits it (the bridge's DataVersion
        is then stale: its PATCH gets 412)."""
        self._after_read[ref] = edit

    # -- the exchange with site (1C is the client) ----------------------------------------

    def exchange(
        self,
        url: str,
        login: str,
        password: str,
        *,
        zipped: bool = False,
        chunk: int | None = None,
        filename: str = "orders.xml",
        before_query: Callable[[], None] | None = None,
        everything: bool = False,
        file: bytes | None = None,
        confirm: bool = True,
    ) -> ExchangeLog:
        """One scheduled exchange of orders with a site; returns what it said.

        Args:
            zipped: compress the file when the site accepts zip.
            chunk: POST size (default: the site's ``file_limit``).
            before_query: runs between ``import`` and ``query`` (a test runs the worker).
            everything: upload every order, not only those changed since the last exchange.
            file: upload these bytes instead of the orders' file.
            confirm: say ``success`` after taking the site's orders (False: 1C stops there).
        """
        session = _Session(url, ExchangeLog())
        self.log.append(session.log)
        if not session.login(login, password):
            return session.log
        params = session.init()
        changed = [o for o in self.orders.values() if everything or self._changed(o)]
        if changed or file is not None:
            body = file if file is not None else self.file(changed)
            if zipped and params.get("zip") == "yes":
                body, filename = _zip(body, filename), filename.rsplit(".", 1)[0] + ".zip"
            size = chunk or int(params.get("file_limit", len(body)))
            if not session.upload(body, filename, size):
                return session.log  # 1C stops the exchange at a failure
            self._uploaded.update({o.ref: o.version for o in changed})
        if before_query is not None:
            before_query()
        orders = session.query()
        if orders is not None:
            self.take(orders)
            if confirm:
                session.step("success")
        return session.log

    def file(self, orders: list[SandboxOrder]) -> bytes:
        """The CommerceML file 1C writes for these orders."""
        return package(orders, encoding=self.encoding, container=self.container, now=datetime.now())

    def take(self, body: bytes) -> None:
        """Load a site's orders: 1C takes their comment and requisites."""
        known = {"Статус заказа", "Отменен", "Менеджер", "Номер по 1С", "Дата по 1С", "Проведен"}
        for ref, comment, requisites in returned(body):
            order = self.orders.get(ref)
            if order is None:
                continue
            kept = {k: v for k, v in requisites.items() if k not in known}
            if comment != order.comment or kept.items() - order.requisites.items():
                order.comment = comment
                order.requisites.update(kept)
                order.version += 1  # 1C registers the change: the next exchange uploads it

    def _changed(self, order: SandboxOrder) -> bool:
        return self._uploaded.get(order.ref) != order.version

    # -- OData ----------------------------------------------------------------------------

    def _app(self) -> Flask:
        app = Flask(__name__)
        path = f"/trade/odata/standard.odata/{ENTITY}(guid'<ref>')"
        app.add_url_rule(path, "get", self._get, methods=["GET"])
        app.add_url_rule(path, "patch", self._patch, methods=["PATCH"])
        app.add_url_rule(f"/trade/odata/standard.odata/{ENTITY}", "list", self._list)
        return app

    def _entity(self, order: SandboxOrder) -> dict[str, Any]:
        manager = str(uuid.uuid5(uuid.NAMESPACE_URL, order.manager)) if order.manager else ""
        return {
            "Ref_Key": order.ref,
            "DataVersion": _version(order.version),
            "DeletionMark": False,
            "Number": order.number,
            "Date": order.date.isoformat(),
            "Posted": True,
            "Статус": _enumeration(order.status),
            "Отменен": order.cancelled,
            "Комментарий": order.comment,
            "СуммаДокумента": order.amount,
            "Менеджер_Key": manager or "00000000-0000-0000-0000-000000000000",
            "Менеджер____Presentation": order.manager,
            **{k: v for k, v in order.requisites.items()},
        }

    def _list(self) -> Any:
        """The entity set, filtered, ordered and paged (platform docs 17.4, §3.1)."""
        with self._lock:
            found = [self._entity(o) for o in self.orders.values()]
        wanted = request.args.get("$filter", "")
        if wanted:
            match = FILTER.match(wanted)
            if match is None:
                return _error(400, 14, f"Неверный фильтр: {wanted}")
            prop, op, moment = match.groups()
            after = (lambda v: v > moment) if op == "gt" else (lambda v: v >= moment)
            found = [e for e in found if after(str(e.get(prop) or ""))]
        found.sort(key=lambda e: (e["Date"], e["Ref_Key"]))
        skip = int(request.args.get("$skip", 0))
        top = int(request.args.get("$top", len(found) or 1))
        self.odata_log.append(("GET", ENTITY, 200))
        return jsonify({"odata.metadata": f"$metadata#{ENTITY}", "value": found[skip : skip + top]})

    def _get(self, ref: str) -> Any:
        with self._lock:
            order = self.orders.get(ref)
            if order is None:
                return _error(404, 9, "Объект не найден")
            entity = self._entity(order)
        self.odata_log.append(("GET", ref, 200))
        edit = self._after_read.pop(ref, None)
        if edit is not None:
            with self._lock:
                edit(order)
                order.version += 1
        return jsonify(entity)

    def _patch(self, ref: str) -> Any:
        with self._lock:
            order = self.orders.get(ref)
            if order is None:
                return _error(404, 9, "Объект не найден")
            if request.headers.get("If-Match") not in (None, _version(order.version)):
                self.odata_log.append(("PATCH", ref, 412))
                return _error(412, 0, "Версия объекта изменена")
            for key, value in (request.get_json() or {}).items():
                if key == "Комментарий":
                    order.comment = str(value)
                else:
                    order.requisites[key] = str(value)
            order.version += 1
            self.odata_log.append(("PATCH", ref, 200))
            return jsonify(self._entity(order))


class _Session:
    """One exchange of 1C with a site: its cookie, its steps, and the log of the answers."""

    def __init__(self, url: str, log: ExchangeLog) -> None:
        self.url, self.log, self.http = url, log, requests.Session()

    def login(self, login: str, password: str) -> bool:
        """``checkauth``; the cookie it hands out goes with every later step."""
        lines = self.step("checkauth", auth=(login, password)).split("\n")
        if lines[0] != "success":
            return False
        self.http.cookies.set(lines[1], lines[2])
        return True

    def init(self) -> dict[str, str]:
        """``init``: the site's ``zip`` and ``file_limit``."""
        return dict(line.split("=", 1) for line in self.step("init").split())

    def upload(self, body: bytes, filename: str, size: int) -> bool:
        """The file in POSTs of ``size`` bytes, then ``import``; False at a failure."""
        for start in range(0, len(body), size):
            part = body[start : start + size]
            if self.step("file", data=part, filename=filename) != "success":
                return False
        return self.step("import", filename=filename) == "success"

    def query(self) -> bytes | None:
        """``query``: the site's orders (None when it answered something else)."""
        reply = self.http.get(self.url, params={"type": "sale", "mode": "query"}, timeout=30)
        self.log.steps.append(Step("query", reply.status_code, "", reply.content))
        return reply.content if reply.ok and reply.content.startswith(b"<?xml") else None

    def step(self, mode: str, **kw: Any) -> str:
        """One request; the site's text answer (kept in the log)."""
        params = {"type": "sale", "mode": mode}
        if "filename" in kw:
            params["filename"] = kw.pop("filename")
        data = kw.pop("data", None)
        method = self.http.post if data is not None else self.http.get
        reply = method(self.url, params=params, data=data, timeout=30, **kw)
        text = reply.content.decode(reply.encoding or "utf-8")
        self.log.steps.append(Step(mode, reply.status_code, text))
        return text


def _enumeration(status: str) -> str:
    """A status as an enumeration value's name: «В работе» -> ``ВРаботе``."""
    return "".join(word[:1].upper() + word[1:] for word in status.split())


def _version(number: int) -> str:
    return base64.b64encode(number.to_bytes(8, "big")).decode()


def _error(status: int, code: int, message: str) -> Response:
    body = {"odata.error": {"code": str(code), "message": {"lang": "ru", "value": message}}}
    answer = jsonify(body)
    answer.status_code = status
    return answer


def _zip(body: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, body)
    return out.getvalue()
