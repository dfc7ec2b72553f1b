"""How a CRM declares itself to the bridge: class attributes that the registry reads.

One CRM is one package, ``bridge/crms/<name>/`` (or any importable package registered with
:func:`bridge.crms.register`): its ``__init__`` holds a subclass of :class:`CRM` whose class
attributes say what the CRM is: its name, title and docs, the settings of a tenant's
``connection`` block, the record kinds it offers and the actions it can execute on each, the
patterns of its secrets (masked in every log line), its periodic checks and CLI commands, and
where its connector, ingress blueprint, default mapping and sandbox live. The heavy parts are
named by ``"module:attribute"`` and imported only when used: the web process never loads a
connector's HTTP client, the CLI never loads Flask to validate a file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from bridge import yamlfile
from bridge.errors import ConfigError

if TYPE_CHECKING:
    from bridge.crms.connector import Connector


@dataclass(frozen=True)
class RecordKind:
    """A kind of record a CRM offers (``deal``, ``lead``, ``order``) and what it can do to one."""

    name: str
    title: str
    actions: frozenset[str]
    """The action kinds of :data:`bridge.actions.CRM_KINDS` the CRM executes on this kind."""


@dataclass(frozen=True)
class Check:
    """A question the bridge asks a tenant's CRM periodically (``bridge cron``).

    ``method`` names a connector method that returns a list of problems, each a sentence for
    the admin; any problem is journaled as an alert and logged as an error.
    """

    method: str
    every: int
    """Seconds between two checks."""
    title: str


@dataclass(frozen=True)
class Chore:
    """Housekeeping the bridge does for a tenant's CRM periodically (``bridge cron``).

    ``method`` names a connector method that returns a summary line (logged); what it does is
    its own (1C: forget closed orders of the bridge's store).
    """

    method: str
    every: int
    """Seconds between two runs."""
    title: str


class ConnectionSettings(BaseModel):
    """What every CRM's ``connection`` block has: the pace of its shared rate limit and the
    timeout of one request. A CRM's settings model extends it (and sets its own defaults)."""

    model_config = ConfigDict(extra="forbid")

    optional_secrets: ClassVar[frozenset[str]] = frozenset()
    """``*_env`` settings whose secret the connector can do without (``bridge validate`` notes
    them unset, with the setting's description, instead of reporting a problem)."""

    requests_per_second: float = Field(default=2.0, gt=0, description="the CRM's request limit")
    burst: int = Field(default=1, ge=1, description="requests allowed back to back")
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")

    def address(self) -> str:
        """Where the bridge looks for the CRM, as an admin would check it (error messages)."""
        return "the CRM's address in the tenant's `connection:` block"

    def credentials(self) -> str:
        """What the bridge shows the CRM as its credentials, as an admin would check them."""
        return "the credentials in the tenant's `connection:` block"

    def missing(self) -> str:
        """What to check when the CRM has no record by the id asked for (error messages)."""
        return f"check the id, and {self.credentials()}"


def load(path: str) -> Any:
    """The object a ``"package.module:attribute"`` path names (imported on first use)."""
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


class CRM:
    """A CRM as the bridge knows it. Subclasses set the class attributes; nothing else.

    Attributes:
        name: the ``crm:`` value of a tenant in ``bridge.yaml``.
        title: how people write it (error messages, docs).
        docs_url: the CRM's developer documentation that its package follows.
        settings: the model of a tenant's ``connection`` block (a :class:`ConnectionSettings`);
            secret settings end in ``_env`` and name environment variables.
        record_kinds: the canonical kinds of record it offers, with the actions on each.
        secret_patterns: regexes of its credentials as they appear in text (URLs, paths):
            group 1 is kept, group 2 is the secret and is masked everywhere.
        checks: periodic questions to the CRM (``bridge cron`` asks them).
        chores: periodic housekeeping of its connector (``bridge cron`` runs it).
        commands: ``"module:attribute"`` of click commands it adds to ``bridge``.
        connector: ``"module:Class"`` of its :class:`~bridge.crms.connector.Connector`.
        ingress: ``"module:attribute"`` of its Flask blueprint (the webhook receiver).
        sandbox: ``"module:Class"`` of its local stand-in (a :class:`bridge.sandbox.Stand`),
            or None.
        mapping_file: its default mapping, beside the package's ``__init__``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    docs_url: ClassVar[str]
    settings: ClassVar[type[ConnectionSettings]]
    record_kinds: ClassVar[tuple[RecordKind, ...]]
    secret_patterns: ClassVar[tuple[str, ...]] = ()
    checks: ClassVar[tuple[Check, ...]] = ()
    chores: ClassVar[tuple[Chore, ...]] = ()
    commands: ClassVar[tuple[str, ...]] = ()
    connector: ClassVar[str]
    ingress: ClassVar[str]
    sandbox: ClassVar[str | None] = None
    mapping_file: ClassVar[str] = "mapping.yaml"

    @classmethod
    def kinds(cls) -> dict[str, RecordKind]:
        """Its record kinds by name."""
        return {kind.name: kind for kind in cls.record_kinds}

    @classmethod
    def mapping_path(cls) -> Path:
        """Its default mapping file."""
        return Path(sys.modules[cls.__module__].__file__ or ".").parent / cls.mapping_file

    @classmethod
    def connector_class(cls) -> type[Connector]:
        """Its connector class (imports the connector's module)."""
        return load(cls.connector)

    @classmethod
    def blueprint(cls) -> Any:
        """Its ingress blueprint (imports Flask and the ingress module)."""
        return load(cls.ingress)

    @classmethod
    def stand_class(cls) -> Any:
        """Its sandbox's stand class, or None where it ships no sandbox."""
        return load(cls.sandbox) if cls.sandbox else None

    @classmethod
    def cli_commands(cls) -> list[Any]:
        """The click commands it adds to ``bridge``."""
        return [load(path) for path in cls.commands]

    @classmethod
    def check_settings(cls, doc: yamlfile.YamlDoc, at: Sequence[Any]) -> list[str]:
        """Problems with a tenant's ``connection`` block at key path ``at``, with file:line."""
        node = doc.data
        for part in at:
            node = node[part]
        try:
            yamlfile.validate(cls.settings, doc, at, node)
        except ConfigError as exc:
            return exc.problems
        return []

    @classmethod
    def limiter_key(cls, tenant_name: str, options: ConnectionSettings) -> str:
        """Names the shared rate-limit bucket: the CRM counts per portal or account.

        Default: ``<crm>:<member_id>`` when the settings have one, else ``<crm>:<tenant>``.
        """
        return f"{cls.name}:{getattr(options, 'member_id', None) or tenant_name}"

    @classmethod
    def pace(cls, options: ConnectionSettings) -> float:
        """Requests per second the shared bucket hands out (default: the settings' rate)."""
        return options.requests_per_second
