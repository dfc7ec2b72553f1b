"""gunicorn's logger for the webhook app: access and error lines with secrets masked.

amoCRM's hook secret is a segment of the hook's URL, so every request line of an amoCRM hook,
and every stranger's guess, carries it; 1C's session id travels in the query. gunicorn writes
those lines itself, before and outside the app's logging, so the app's
:class:`~bridge.masking.RedactingFilter` must sit on gunicorn's own handlers too:
``logger_class = "bridge.weblog.RedactingLogger"`` (deploy/gunicorn.conf.py). Phones and
e-mail addresses in a URL are masked the same way.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from bridge import crms
from bridge.masking import RedactingFilter


class RedactingLogger(Logger):
    """gunicorn's logger, each line passed through :func:`bridge.masking.redact`."""

    def setup(self, cfg: Any) -> None:
        """Set up gunicorn's handlers (also on a reload), then mask what they write."""
        super().setup(cfg)
        crms.every()  # each CRM registers the shape of its secrets as it loads
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                    handler.addFilter(RedactingFilter())
