"""The stand-in 1C as one tenant's infobase, for ``bridge demo --crm onec``.

A person works in 1C (orders are added and changed in canonical words, translated through the
tenant's mapping), and 1C exchanges with the bridge on its schedule: here, whenever the demo
waits for deliveries (upload) and asks what the bridge wrote (``query``, ``success``). What
the bridge wrote is what came back into the orders: its comment lines and requisites.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from bridge.crms.onec.order import NOTE_MARK
from bridge.crms.onec.sandbox import OneCSandbox
from bridge.sandbox import Stand

if TYPE_CHECKING:
    from bridge.config import Tenant

PASSWORD_ENV, PASSWORD = "STAND_1C_PASSWORD", "stand-exchange-secret"
LOGIN = "stand"
KIND = "order"


class OneCStand(Stand):
    """An infobase whose statuses, requisites and managers are the ones a mapping names."""

    demo_tenant: ClassVar[str] = "fireworks-1c"

    def __init__(self) -> None:
        self.sandbox = OneCSandbox()
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
        """The exchange node's login and password."""
        return {"login": LOGIN, "password_env": PASSWORD_ENV}, {PASSWORD_ENV: PASSWORD}

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

    def add_deal(self, title: str, stage: str, responsible: str) -> str:
        """An order for buyer ``title``, in a canonical stage, managed by a user alias."""
        number = f"ДЕМО-{next(self._numbers):04d}"
        order = self.sandbox.add_order(
            number,
            datetime.now().replace(microsecond=0),
            status=self._status(stage),
            buyer=title,
            manager=self._manager(responsible),
        )
        return order.ref

    def update_deal(self, deal_id: str, stage: str, fields: dict[str, Any]) -> None:
        """A manager changes the order's status and fields (the comment among them)."""
        mapping = self._tenant().mapping
        change: dict[str, Any] = {"status": self._status(stage)}
        requisites = dict(self.sandbox.orders[deal_id].requisites)
        for name, value in fields.items():
            code = mapping.field_code(KIND, name)
            if code == "Комментарий":
                change["comment"] = str(value)
            else:
                requisites[code] = str(value)
                self._by_people.setdefault(deal_id, {})[code] = str(value)
        self.sandbox.change(deal_id, requisites=requisites, **change)

    def written(self) -> list[str]:
        """The bridge's lines in the orders' comments, and the requisites it set."""
        self.wait_delivered()
        lines = []
        for order in self.sandbox.orders.values():
            for line in order.comment.splitlines():
                if line.startswith(NOTE_MARK):
                    lines.append(f"comment in 1C order {order.number}: {line.partition('] ')[2]}")
            people = self._by_people.get(order.ref, {})
            for name, value in order.requisites.items():
                if people.get(name) != value:
                    lines.append(f"requisite of 1C order {order.number}: {name} = {value}")
        return lines

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
