"""A lock-out after repeated failed logins, kept in Redis so that it holds across processes.

Failures are counted per login name and per client address, each count expiring with the
window: after ``max_failures`` failures within ``minutes``, that name (and that address) is
refused for the rest of the window, right password or not. The admin pages' login and the
CRMs' password logins (1C's exchange) count their failures here, each under its own scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

PREFIX = "bridge:lockout"


@dataclass(frozen=True)
class Lockout:
    """Failed logins of one scope (``admin``, or a tenant's exchange)."""

    redis: redis.Redis
    scope: str
    max_failures: int
    minutes: int

    def keys(self, name: str, address: str | None) -> list[str]:
        """The counters of a login name and of a client address."""
        base = f"{PREFIX}:{self.scope}"
        return [f"{base}:user:{name.lower()}", f"{base}:addr:{address or '-'}"]

    def locked(self, name: str, address: str | None) -> bool:
        """Whether the name or the address is locked out."""
        values = self.redis.mget(self.keys(name, address))
        return any(int(v or 0) >= self.max_failures for v in values)

    def fail(self, name: str, address: str | None) -> bool:
        """Count one failure against the name and the address; whether this one locked
        either of them out."""
        pipe = self.redis.pipeline()
        for key in self.keys(name, address):
            pipe.incr(key)
            pipe.expire(key, self.minutes * 60)
        counts = pipe.execute()[::2]
        return any(int(c) == self.max_failures for c in counts)

    def forget(self, name: str) -> None:
        """A successful login clears the name's count (the address's stays until it expires:
        one right password must not reset a guesser's count)."""
        self.redis.delete(self.keys(name, None)[0])
