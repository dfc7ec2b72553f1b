"""Local stand-ins for the CRMs, speaking their documented wire formats over real HTTP.

Each CRM's sandbox lives in its own package (``bridge/crms/<name>/sandbox/``); what they share
(a loopback server, a webhook poster, fault injection) lives here. A sandbox offers a
:class:`Stand`: the sandbox dressed as one company's account, on which ``bridge demo`` plays
the same story whatever the CRM, in the canonical words of the tenant's mapping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from bridge.config import Tenant


class Stand(ABC):
    """A CRM's sandbox as one tenant's account: seeded, subscribed, played in canonical words.

    The life of a stand: :meth:`start` (the sandbox serves), :meth:`connection` (what the
    tenant's config must say to reach it), :meth:`seed` (its people, pipelines and fields,
    once the tenant is loaded), :meth:`connect` (credentials, hooks to the bridge), then
    deals are added and moved with canonical stage and field names, translated through the
    tenant's mapping, and :meth:`written` lists what the bridge wrote back.
    """

    demo_tenant: ClassVar[str] = "remarka"
    """The tenant of config/bridge.yaml whose story ``bridge demo`` plays on this stand (a CRM
    whose records are no deals plays another company's story)."""

    @abstractmethod
    def start(self) -> None:
        """Serve the sandbox on loopback."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving."""

    @abstractmethod
    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The tenant's ``connection`` block for this sandbox, and the secrets it names
        (environment variable -> value)."""

    @abstractmethod
    def seed(self, tenant: Tenant) -> None:
        """Create the account's users, pipelines, stages and fields the mapping names."""

    @abstractmethod
    def connect(self, rt: Any, bridge_url: str) -> None:
        """Give the bridge its credentials and subscribe the bridge's hook at ``bridge_url``."""

    @abstractmethod
    def wait_delivered(self) -> None:
        """Block until every webhook the sandbox queued was posted."""

    @abstractmethod
    def add_deal(self, title: str, stage: str, responsible: str) -> str:
        """A manager creates a deal in a canonical stage, for a user alias; returns its id."""

    @abstractmethod
    def update_deal(self, deal_id: str, stage: str, fields: dict[str, Any]) -> None:
        """A manager moves a deal to a canonical stage (``lost`` too), setting canonical
        fields."""

    @abstractmethod
    def written(self) -> list[str]:
        """What the bridge wrote so far (tasks, comments), one human line each, in order."""
