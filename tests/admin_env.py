"""The admin pages' side of the tests: Remarka's portal wired to a bridge whose config turns
the admin pages on (tests/fixtures/admin.yaml), and a logged-in test client.

Sessions are Secure cookies, so the client speaks to ``https://localhost``; flask-wtf checks
the Referer of HTTPS form posts, so :meth:`Admin.post` sends one, as a browser does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.app import create_app
from tests.bitrix24_env import ROOT, Bridge

ADMIN_CONFIG = ROOT / "tests" / "fixtures" / "admin.yaml"
BASE = "https://localhost"
PASSWORDS = {"orlov": "orlov-pass-1", "ivanova": "ivanova-pass-2"}
KEY_ENV = "BRIDGE_TEST_ADMIN_KEY"


def csrf_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert found, "the page has no CSRF token"
    return found.group(1)


@dataclass
class Admin:
    """A client of the admin pages of one app."""

    app: Flask
    client: FlaskClient

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET over HTTPS."""
        return self.client.get(path, base_url=BASE, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, token: bool = True) -> Any:
        """POST a form as a browser would: the page's CSRF token and a Referer."""
        if token:
            data = {"csrf_token": csrf_token(self.get("/admin/login").text), **data}
        return self.client.post(
            path, data=data, base_url=BASE, headers={"Referer": f"{BASE}/admin/"}
        )

    def login(self, user: str, password: str | None = None) -> Any:
        """Log in; returns the response of the login POST."""
        return self.post(
            "/admin/login", {"username": user, "password": password or PASSWORDS[user]}
        )


@pytest.fixture
def admin_bridge(
    make_bridge: Callable[..., Bridge], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bridge]:
    """Remarka's portal and a bridge with the admin pages on (no hooks subscribed)."""
    monkeypatch.setenv(KEY_ENV, "a test key that signs the session cookies")
    yield make_bridge(ADMIN_CONFIG)


@pytest.fixture
def make_admin(admin_bridge: Bridge) -> Callable[[], Admin]:
    """A new client (its own cookie jar) of an app on the bridge's runtime."""

    def build() -> Admin:
        app = create_app(runtime=admin_bridge.runtime)
        return Admin(app, app.test_client())

    return build


@pytest.fixture
def orlov(make_admin: Callable[[], Admin]) -> Admin:
    """The head of sales, logged in: sees every tenant."""
    admin = make_admin()
    assert admin.login("orlov").status_code == 302
    return admin
