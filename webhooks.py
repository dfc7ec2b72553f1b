"""The webhook server's entry point: ``gunicorn 'webhooks:create_app()'``."""

from bridge.app import create_app

__all__ = ["create_app"]
