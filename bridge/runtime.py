"""What one process holds while it runs: settings, journal, Redis, connectors, mailers.

Built once per process: by the app factory for the web process, lazily by :func:`current`
in workers (rq imports job functions by name, so they find their runtime here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis

from bridge import config, crms, email, metrics, queue, services
from bridge.crms.connector import Connector
from bridge.journal import Journal
from bridge.ratelimit import RateLimiter


@dataclass
class Runtime:
    """The loaded configuration and the connections of one process."""

    settings: config.Settings
    journal: Journal
    redis: redis.Redis
    _connectors: dict[str, Connector] = field(default_factory=dict)
    _mailers: dict[str, email.Mailer] = field(default_factory=dict)

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
        """The tenant's connector, built once and reused (it caches nothing stale).

        It is handed the shared rate limit of its CRM account and the shared Redis.
        """
        if tenant.name not in self._connectors:
            crm = crms.get(tenant.config.crm)
            options = crm.settings.model_validate(tenant.config.connection)
            limiter = RateLimiter(
                self.redis, crm.limiter_key(tenant.name, options), crm.pace(options), options.burst
            )
            cls = crm.connector_class()
            made = cls(tenant, limiter=limiter, shared=self.redis)
            self._connectors[tenant.name] = metrics.instrument(made)
        return self._connectors[tenant.name]

    def mailer(self, tenant: config.Tenant) -> email.Mailer:
        """The tenant's mailer, built once (its ``email:`` settings, or the outbox)."""
        if tenant.name not in self._mailers:
            self._mailers[tenant.name] = email.mailer_for(tenant)
        return self._mailers[tenant.name]

    @cached_property
    def queue(self) -> queue.EventQueue:
        """The tenants' event streams on this process's Redis."""
        return queue.EventQueue(self.redis)

    def replay(self, event_ids: list[int]) -> int:
        """Put journaled events back in their tenants' streams (dead letters, an admin's
        replay): what they did is kept, what failed or never ran runs again."""
        rows = self.journal.events_by_id(event_ids)
        for row in rows.values():
            self.queue.append(row.tenant, {"k": "replay", "event": row.id})
        return len(rows)

    def resume(self, tenant: str) -> int:
        """A tenant's CRM works again (new credentials): end its hold and replay the events
        that ran out of retries meanwhile; returns how many."""
        self.queue.resume(tenant)
        return self.replay(self.journal.dead_letters(tenant))


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
