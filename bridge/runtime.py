"""What one process holds while it runs: settings, journal, Redis, connectors.

Built once per process: by the app factory for the web process, lazily by :func:`current`
in workers (rq imports job functions by name, so they find their runtime here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from bridge import config, services
from bridge.connectors import Connector, connector_class
from bridge.journal import Journal
from bridge.ratelimit import RateLimiter


@dataclass
class Runtime:
    """The loaded configuration and the connections of one process."""

    settings: config.Settings
    journal: Journal
    redis: redis.Redis
    _connectors: dict[str, Connector] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        config_path: str | None = None,
        journal_url: str | None = None,
        redis_url: str | None = None,
    ) -> Runtime:
        """Load the configuration and open the journal and Redis."""
        return cls(
            settings=config.load(config_path),
            journal=Journal(journal_url),
            redis=services.connect(redis_url),
        )

    def tenant(self, name: str) -> config.Tenant | None:
        """A tenant by name, or None."""
        return self.settings.tenants.get(name)

    def connector(self, tenant: config.Tenant) -> Connector:
        """The tenant's connector, built once and reused (it caches nothing stale)."""
        if tenant.name not in self._connectors:
            cls: Any = connector_class(tenant.config.crm)
            self._connectors[tenant.name] = cls(tenant, limiter=self._limiter(tenant, cls))
        return self._connectors[tenant.name]

    def _limiter(self, tenant: config.Tenant, cls: Any) -> RateLimiter:
        options = cls.settings.model_validate(tenant.config.connection)
        key = f"{tenant.config.crm}:{getattr(options, 'member_id', None) or tenant.name}"
        return RateLimiter(self.redis, key, options.requests_per_second, options.burst)


_current: Runtime | None = None


def current() -> Runtime:
    """This process's runtime, built from the environment on first use (workers)."""
    global _current
    if _current is None:
        _current = Runtime.build()
    return _current


def install(runtime: Runtime) -> None:
    """Make ``runtime`` the process's runtime (the worker command and tests do this)."""
    global _current
    _current = runtime
