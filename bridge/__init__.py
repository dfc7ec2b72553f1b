"""The bridge: a sales department's regulations, run beside its CRM.

The flow, one module each: ingress -> queue -> pipeline -> regulations -> connectors -> journal.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Action", "Connector", "Event", "Plan", "Record", "create_app", "evaluate"]

_WHERE = {
    "Action": "bridge.models",
    "Event": "bridge.models",
    "Plan": "bridge.models",
    "Record": "bridge.models",
    "Connector": "bridge.crms.connector",
    "create_app": "bridge.app",
    "evaluate": "bridge.regulations",
}


def __getattr__(name: str) -> Any:
    # lazy: `import bridge.formdata` must not load Flask, rq and SQLAlchemy
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")
