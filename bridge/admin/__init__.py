"""The admin pages, ``/admin``: the head of sales sees who breaks which rule.

One blueprint, registered by the app factory when the config has an ``admin:`` block
(docs/configuration.md). Every page needs a login (:mod:`bridge.admin.auth`); every form
carries a CSRF token; every page is scoped to one tenant the user may see. Charts are SVG
drawn on the server (:mod:`bridge.admin.charts`) and the one stylesheet is served from here:
the pages load nothing from elsewhere, so they work on a closed network.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, request
from flask_wtf.csrf import CSRFProtect

from bridge.config import AdminConfig, read_secret
from bridge.runtime import Runtime

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
csrf = CSRFProtect()


@bp.before_request
def _csrf() -> None:
    # the app's other routes (the CRMs' webhooks) take no forms: CSRF is checked here only
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


def install(app: Flask, rt: Runtime) -> None:
    """Register the admin pages when the config asks for them.

    Raises:
        bridge.errors.ConfigError: the session key's variable is not set.
    """
    admin: AdminConfig | None = rt.settings.admin
    if admin is None:
        return
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_secret(admin.secret_key_env)
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,
        SESSION_COOKIE_SECURE=admin.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=admin.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=admin.session_hours),
    )
    csrf.init_app(app)
    from bridge.admin import auth, backtest, events, queue, reports, trial  # noqa: F401

    auth.login_manager.init_app(app)
    app.register_blueprint(bp)
