"""Logging in: users from the config, password hashes, a lock-out kept in Redis.

The lock-out (:mod:`bridge.lockout`) counts failures per login name and per client address in
Redis, so it holds across every gunicorn worker: after ``max_failures`` wrong passwords within
the lock-out window, that name (and that address) is refused for ``lockout_minutes``, right
password or not. A wrong name costs the same hash check as a wrong password, so names cannot
be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from bridge.admin import bp
from bridge.config import AdminConfig
from bridge.lockout import Lockout
from bridge.runtime import Runtime

login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Войдите, чтобы открыть эту страницу."
login_manager.session_protection = "strong"
_DUMMY = generate_password_hash("a password nobody has")


@dataclass
class User(UserMixin):
    """A logged-in person: a login of ``admin.users`` and the tenants they may see."""

    id: str
    tenants: tuple[str, ...]

    def may_see(self, tenant: str) -> bool:
        """Whether this person may see a tenant's pages."""
        return tenant in self.tenants


def runtime() -> Runtime:
    """The app's runtime."""
    return current_app.extensions["bridge"]


def settings() -> AdminConfig:
    """The ``admin:`` block of the config (installed only when present)."""
    admin = runtime().settings.admin
    assert admin is not None
    return admin


@login_manager.user_loader
def load_user(login: str) -> User | None:
    """The user a session names, while the config still lists them."""
    found = settings().users.get(login)
    if found is None:
        return None
    every = list(runtime().settings.tenants)  # in the config's order: the first is the default
    return User(login, tuple(found.tenants or every))


class LoginForm(FlaskForm):
    """The login form (its CSRF token included)."""

    username = StringField("Логин", validators=[DataRequired()])
    password = PasswordField("Пароль", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the login form; log in, or count a failure."""
    form = LoginForm()
    if form.validate_on_submit():
        name = form.username.data.strip()
        if lockout().locked(name, request.remote_addr):
            flash("Слишком много неудачных попыток. Попробуйте позже.", "error")
            return render_template("admin/login.html", form=form), 429
        if _password_ok(name, form.password.data):
            lockout().forget(name)
            login_user(load_user(name))
            return redirect(_next_page())
        lockout().fail(name, request.remote_addr)
        flash("Неверный логин или пароль.", "error")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    """Log out (a POST with the CSRF token, so no page can log a user out)."""
    logout_user()
    return redirect(url_for("admin.login"))


def _password_ok(name: str, password: str) -> bool:
    user = settings().users.get(name)
    return check_password_hash(user.password_hash if user else _DUMMY, password) and bool(user)


def _next_page() -> str:
    wanted = request.args.get("next", "")
    # only a path of these pages: never an open redirect to another site
    if wanted.startswith("/admin/") and not wanted.startswith("//"):
        return wanted
    return url_for("admin.violations")


def lockout() -> Lockout:
    """The admin pages' lock-out (``max_failures``, ``lockout_minutes``)."""
    admin = settings()
    return Lockout(runtime().redis, "admin", admin.max_failures, admin.lockout_minutes)


def visible_tenants() -> tuple[str, ...]:
    """The tenants the logged-in user may see."""
    return current_user.tenants
