"""The stand-in 1C as one tenant's infobase, for ``bridge demo --crm onec``.

A person works in 1C (orders are added and changed in canonical words, translated through the
tenant's mapping), and 1C exchanges with the bridge on its schedule: here, whenever the demo
waits for deliveries (upload) and asks what the bridge wrote (``query``, ``success``). What
the bridge wrote is what came back into the orders: its comment lines and requisites.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from bridge.crms.onec.order import NOTE_MARK
from bridge.crms.onec.sandbox import OneCSandbox
from bridge.sandbox import Stand, Written

if TYPE_CHECKING:
    from bridge.config import Tenant

PASSWORD_ENV, PASSWORD = "STAND_1C_PASSWORD", "stand-exchange-secret"
LOGIN = "stand"
KIND = "order"
WRITTEN_TITLE = re.compile(r"^Заказ (\S+) от (\d{2})\.(\d{2})\.(\d{4})$")
"""A title in 1C's own form (``Заказ ПТ00-000520 от 31.10.2025``): the order's number, date."""


class OneCStand(Stand):
    """An infobase whose statuses, requisites and managers are the ones a mapping names."""

    demo_tenant: ClassVar[str] = "fireworks-1c"

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = OneCSandbox()
        self.now: Callable[[], datetime] = datetime.now
        self._clients: dict[str, tuple[str, str]] = {}  # contact id -> its e-mail and phone
        self._buyers: dict[str, str] = {}  # contact id -> the counterparty's name
        self.tenant: Tenant | None = None
        self.hook = ""
        self._numbers = itertools.count(1)
        self._by_people: dict[str, dict[str, str]] = {}  # requisites people set, by order

    def start(self) -> None:
        """Serve the infobase's OData (the exchange needs no server: 1C is its client)."""
        self.sandbox.start()

    def stop(self) -> None:
        """Stop serving."""
        self.sandbox.stop()

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The exchange node's login and password; the store in the sandbox's folder (beside
        its config), and no OData: nothing may reach the tenant's real infobase or store."""
        block = {"login": LOGIN, "password_env": PASSWORD_ENV, "store": "onec", "odata": None}
        return block, {PASSWORD_ENV: PASSWORD}

    def seed(self, tenant: Tenant) -> None:
        """Nothing to create: 1C's statuses and requisites are names the mapping already uses."""
        self.tenant = tenant

    def connect(self, rt: Any, bridge_url: str) -> None:
        """Point the exchange node at the bridge."""
        assert self.tenant is not None
        self.hook = f"{bridge_url}/hooks/onec/{self.tenant.name}"

    def wait_delivered(self) -> None:
        """1C's scheduled exchange: what changed goes up, what the bridge wrote comes back."""
        self.sandbox.exchange(self.hook, LOGIN, PASSWORD)

    def add_contact(self, name: str, email: str, phone: str) -> str:
        """A client's e-mail and phone (1C's exchange carries them in the order's buyer)."""
        contact = f"buyer-{len(self._clients) + 1}"
        self._clients[contact] = (email, phone)
        self._buyers[contact] = name
        return contact

    def add_record(
        self,
        kind: str,
        title: str,
        stage: str,
        responsible: str,
        *,
        contact: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> str:
        """An order for buyer ``title``, with the e-mail and phone of a client (a contact), in
        a canonical stage, managed by a user alias; a title in 1C's own form (``Заказ N от
        date``) gives the order's number and date instead, and the buyer is the contact's name."""
        written = WRITTEN_TITLE.match(title)
        number = written.group(1) if written else f"ДЕМО-{next(self._numbers):04d}"
        dated = self._local_now()
        if written:
            day, month, year = map(int, written.groups()[1:])
            dated = dated.replace(year=year, month=month, day=day)
        email, phone = self._clients.get(contact or "", ("", ""))
        buyer = self._buyers.get(contact or "", "Покупатель") if written else title
        order = self.sandbox.add_order(
            number,
            dated,
            status=self._status(stage),
            buyer=buyer,
            email=email,
            phone=phone,
            manager=self._manager(responsible),
        )
        if fields:
            self.update_record(kind, order.ref, fields=fields)
        return order.ref

    def update_record(
        self, kind: str, record_id: str, *, stage: str | None = None, fields: dict[str, Any]
    ) -> None:
        """A manager changes the order's status and fields (the comment among them)."""
        mapping = self._tenant().mapping
        change: dict[str, Any] = {"status": self._status(stage)} if stage else {}
        requisites = dict(self.sandbox.orders[record_id].requisites)
        for name, value in fields.items():
            code = mapping.field_code(KIND, name)
            if code == "Комментарий":
                change["comment"] = str(value)
            else:
                requisites[code] = str(value)
                self._by_people.setdefault(record_id, {})[code] = str(value)
        self.sandbox.change(record_id, requisites=requisites, **change)

    def add_call(self, kind: str, record_id: str, *, incoming: bool, completed: bool) -> str:
        """1C's exchange carries orders only: calls live in the telephony, not here."""
        raise ValueError("1C's exchange with the site carries orders, not calls")

    def label(self, kind: str, record_id: str) -> str:
        """The order's number (ДЕМО-0001): how 1C's users name it; the bridge keys it by GUID."""
        order = self.sandbox.orders.get(record_id)
        return order.number if order else record_id

    def set_clock(self, now: Callable[[], datetime]) -> None:
        """The infobase's "now": new orders' dates."""
        self.now = now

    def tasks(self) -> list[Written]:
        """None: 1C has no tasks (a tenant on 1C makes them in its ``tasks_in`` CRM)."""
        return []

    def comments(self) -> list[Written]:
        """The bridge's lines in the orders' comments, after 1C's next exchange."""
        self.wait_delivered()
        return [
            Written("comment", f"1C order {order.number}", line.partition("] ")[2])
            for order in self.sandbox.orders.values()
            for line in order.comment.splitlines()
            if line.startswith(NOTE_MARK)
        ]

    def fields(self) -> list[Written]:
        """The requisites the bridge set (ones no person set), after 1C's next exchange."""
        self.wait_delivered()
        out = []
        for order in self.sandbox.orders.values():
            people = self._by_people.get(order.ref, {})
            for name, value in order.requisites.items():
                if people.get(name) != value:
                    out.append(Written("field", f"1C order {order.number}", f"{name} = {value}"))
        return out

    def _local_now(self) -> datetime:
        """Now as 1C keeps a date: the infobase's local time, without an offset."""
        now = self.now().replace(microsecond=0)
        if now.tzinfo is None or self.tenant is None:
            return now
        return now.astimezone(ZoneInfo(self.tenant.config.timezone)).replace(tzinfo=None)

    def _tenant(self) -> Tenant:
        assert self.tenant is not None, "seed the stand first"
        return self.tenant

    def _status(self, stage: str) -> str:
        statuses = self._tenant().mapping.kind(KIND).stages.get(stage) or [stage]
        return statuses[0]

    def _manager(self, alias: str) -> str:
        """1C's name of a manager: the mapping's ``values.responsible`` read backwards."""
        mapping = self._tenant().mapping
        user = mapping.user(alias)
        names = mapping.kind(KIND).values.get("responsible", {})
        return next((name for name, uid in names.items() if uid == user), alias)
