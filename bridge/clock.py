"""The bridge's one clock.

Every module that needs "now" calls :func:`utcnow` through this module (``clock.utcnow()``),
so a test moves time for the whole process by patching one name. The regulations engine never
reads it: the pipeline hands it the event's time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)
