"""``bridge try <tenant>``: a tenant's own pack on a sandbox of its own CRM, played by hand.

The sandbox is seeded from the tenant's mapping (its users, pipelines and stages, custom
fields) with a few clients; ingress, queue and worker run on embedded defaults (a private
Redis, a SQLite journal, an outbox folder for e-mail, all in a fresh folder); the admin plays
events in canonical words from the command line or a small local page and sees what the
bridge wrote back. The clock is the trial's own: it moves only when told, and timers and
scheduled sweeps come due as it passes them. See docs/first-pack.md.
"""

from __future__ import annotations

from bridge.trial.session import Trial

__all__ = ["Trial"]
