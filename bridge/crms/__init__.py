"""The registry of CRMs: what the rest of the bridge asks instead of naming a CRM.

Each CRM is declared in its own package (:class:`bridge.crms.base.CRM`). The ones shipped are
the packages of this folder, each declaring one CRM class in its ``__init__``: adding a CRM
is adding a folder, and no file outside it changes. A CRM kept elsewhere joins with
:func:`register` (a test, a deployment's own module) or through the ``bridge.crms``
entry-point group of an installed package. Config validates ``crm:`` against this registry; the app
registers every CRM's blueprint, masking learns every CRM's secrets, ``bridge cron`` asks every
CRM's checks and the CLI adds every CRM's commands, all by asking it.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from importlib.metadata import entry_points

from bridge import masking
from bridge.crms.base import CRM, Check, RecordKind

ENTRY_POINTS = "bridge.crms"
"""The entry-point group an installed package declares its CRM class in."""

_REGISTRY: dict[str, type[CRM]] = {}
_plugins_loaded = False


def register(crm: type[CRM]) -> type[CRM]:
    """Add a CRM to the registry (usable as a class decorator); returns it.

    Raises:
        ValueError: another CRM already has that name.
    """
    known = _REGISTRY.get(crm.name)
    if known is not None and known is not crm:
        raise ValueError(f"a CRM named {crm.name!r} is already registered ({known.__module__})")
    _REGISTRY[crm.name] = crm
    masking.add_secret_patterns(crm.secret_patterns)
    return crm


def unregister(name: str) -> None:
    """Remove a CRM from the registry (tests that registered one of their own)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> type[CRM]:
    """The CRM declared under ``name``.

    Raises:
        KeyError: no such CRM (the message lists the known ones).
    """
    _load_plugins()
    if name not in _REGISTRY:
        raise KeyError(f"no CRM named {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name]


def names() -> list[str]:
    """The names of every registered CRM."""
    _load_plugins()
    return sorted(_REGISTRY)


def every() -> list[type[CRM]]:
    """Every registered CRM, by name."""
    return [_REGISTRY[name] for name in names()]


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for point in entry_points(group=ENTRY_POINTS):
            register(point.load())


def _shipped() -> list[type[CRM]]:
    """The CRM class each package of this folder declares in its ``__init__``."""
    found = []
    for info in pkgutil.iter_modules(__path__, f"{__name__}."):
        if info.ispkg:
            module = import_module(info.name)
            found += [
                value
                for value in vars(module).values()
                if isinstance(value, type)
                and issubclass(value, CRM)
                and value.__module__ == module.__name__
            ]
    return found


for _crm in _shipped():
    register(_crm)

__all__ = ["CRM", "Check", "RecordKind", "every", "get", "names", "register", "unregister"]
