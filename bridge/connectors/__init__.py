"""Connectors: one module per external system, all behind :class:`base.Connector`.

Registered in an explicit dict (not a directory scan) so that what runs is what is listed.
"""

from __future__ import annotations

from bridge.connectors.amocrm import AmoCRM
from bridge.connectors.base import Connector, Outcome
from bridge.connectors.bitrix24 import Bitrix24

CONNECTORS: dict[str, type[Connector]] = {Bitrix24.name: Bitrix24, AmoCRM.name: AmoCRM}


def connector_class(crm: str) -> type[Connector]:
    """The connector class for a ``crm:`` value."""
    return CONNECTORS[crm]


__all__ = ["CONNECTORS", "Connector", "Outcome", "connector_class"]
