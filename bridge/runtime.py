"""What one process holds while it runs: settings, journal, Redis, connectors.

Built once per process: by the app factory for the web process, lazily by :func:`current`
in workers (rq imports job functions by name, so they find their runtime here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from jinja2 import TemplateError

from bridge import config, services
from bridge.connectors import Connector, connector_class
from bridge.email import Mailer, SentMail, Signatures, transport_from_settings
from bridge.errors import ConfigError, PermanentError
from bridge.journal import Journal
from bridge.models import Action, Record
from bridge.ratelimit import RateLimiter


@dataclass
class Runtime:
    """The loaded configuration and the connections of one process."""

    settings: config.Settings
    journal: Journal
    redis: redis.Redis
    _connectors: dict[str, Connector] = field(default_factory=dict)
    _mailers: dict[str, Mailer] = field(default_factory=dict)

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
        key = cls.limiter_key(tenant.name, options)
        return RateLimiter(self.redis, key, cls.pace(options), options.burst)

    def mailer(self, tenant: config.Tenant) -> Mailer:
        """The tenant's mailer, built once (its ``email:`` settings, or the outbox)."""
        if tenant.name not in self._mailers:
            cfg = tenant.config.email or config.EmailConfig()
            settings = {"transport": cfg.transport, "folder": tenant.base / cfg.outbox, **cfg.smtp}
            signatures = Signatures.load(tenant.base / cfg.signatures) if cfg.signatures else None
            self._mailers[tenant.name] = Mailer(
                tenant.base / cfg.templates,
                sender=cfg.sender,
                transport=transport_from_settings(settings),
                signatures=signatures,
            )
        return self._mailers[tenant.name]

    def send_email(self, conn: Connector, record: Record, action: Action) -> SentMail:
        """Render and send one ``send_email`` action to its recipient.

        Raises:
            PermanentError: no address, or the template cannot render with this record.
            TransientError: the mail server may accept it later.
        """
        p = action.params
        to = _recipient(conn, record, p["to"])
        if not to:
            raise PermanentError(f"{record.ref} has no e-mail address for {p['to']!r}")
        context = {
            "to": to,
            "record": record,
            "client_name": record.fields.get("client_name") or record.title,
            "manager_name": record.fields.get("manager_name") or "",
        }
        mailer = self.mailer(conn.tenant)
        try:
            message = mailer.render(p["template"], context, region=p.get("region"))
        except (TemplateError, ConfigError) as exc:
            raise PermanentError(f"template {p['template']!r}: {exc}") from exc
        return mailer.send(message, idempotency_key=action.key)


def _recipient(conn: Connector, record: Record, to: str) -> str | None:
    if to == "client":
        return conn.contact_email(record)
    if to == "responsible":
        return conn.user_email(record.responsible) if record.responsible else None
    value = record.value(to)
    return str(value) if value else None


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
