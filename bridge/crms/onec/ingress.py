"""The exchange with 1C: ``GET|POST /hooks/onec/<tenant>?type=sale&mode=...``, the bridge as
the "site" of 1C's standard exchange (P:, shared/reference/onec.md §1).

1C is the client and reads the body, not the status: every answer is 200 and plain text,
``success``, ``failure\\n<reason>`` or ``progress``, in the tenant's encoding. The steps:

- ``checkauth``: HTTP Basic → ``success\\n<cookie name>\\n<cookie value>\\nsessid=<value>``;
  every later step is refused without that cookie (or ``sessid=``). After ``max_failures``
  wrong passwords within ``lockout_minutes`` the login (and the address) is locked out for
  the rest of that time, right password or not: ``failure`` with the reason.
- ``init``: the session starts afresh → ``zip=yes|no\\nfile_limit=<bytes>``.
- ``file`` (POST): chunks with the same ``filename`` are appended.
- ``import``: the received files are checked (limits, names, no DTD) and kept; each becomes
  one ``batch`` event through the gate, which the worker splits into order events. Older 1C
  skips ``import`` for orders: ``query`` finishes the uploads then.
- ``query``: the orders the bridge changed, as CommerceML; ``success``: 1C took them, and
  only now are they marked delivered (a ``query`` without ``success`` sends them again).

A refused upload is dropped whole and journaled; 1C is told why. While Redis is down the
gate keeps the upload's event in its spool; when nothing can keep it, the app answers 503 and
1C, which reads that as a failed exchange, sends the orders again next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import redis
from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge import clock
from bridge.crms.onec import COOKIE, OneC, OneCSettings, commerceml
from bridge.crms.onec.session import Sessions, credentials
from bridge.crms.onec.store import Store
from bridge.crms.onec.uploads import UploadRefused, inspect, safe_name
from bridge.crms.receive import Incoming, Rejected, find_tenant, gate
from bridge.errors import ConfigError
from bridge.formdata import clip
from bridge.models import BATCH

if TYPE_CHECKING:
    from bridge.config import Tenant

log = logging.getLogger(__name__)
bp = Blueprint("ingress_onec", __name__)

CRM = OneC.name


@dataclass
class Site:
    """One tenant's side of the exchange, for one request."""

    tenant: Tenant
    settings: OneCSettings
    store: Store
    sessions: Sessions

    def text(self, body: str) -> Response:
        """A plain-text answer in the tenant's encoding."""
        charset = "utf-8" if self.settings.encoding == "utf-8-sig" else self.settings.encoding
        return Response(body.encode(charset), content_type=f"text/plain; charset={charset}")


@bp.route("/hooks/onec/<tenant>", methods=["GET", "POST"])
def exchange(tenant: str) -> Response:
    """One step of 1C's exchange."""
    try:
        site = _site(tenant)
    except Rejected as error:
        gate().reject(tenant, CRM, error)  # journaled; 1C gets its own words below
        return Response(f"failure\n{error.reason}", content_type="text/plain; charset=utf-8")
    mode, session = request.args.get("mode", ""), None
    try:
        if request.args.get("type", "sale") != "sale":
            raise UploadRefused("мост принимает только заказы (type=sale)")
        if mode == "checkauth":
            return _checkauth(site)
        step = STEPS.get(mode)
        if step is None:
            raise UploadRefused(f"неизвестный режим обмена {mode[:40]!r}")
        session = site.sessions.session(request.cookies.get(COOKIE) or request.args.get("sessid"))
        if session is None:
            raise UploadRefused("нет сессии обмена: начните с mode=checkauth")
        return step(site, session)
    except UploadRefused as refused:
        # journaled row by row once the caller proved it is the tenant's 1C (a session)
        shown = clip(mode, 40)  # the query is the caller's: a reason quotes a bounded part
        error = Rejected(400, f"{refused.reason} (mode {shown})", trusted=session is not None)
        gate().reject(tenant, CRM, error)
        return site.text(f"failure\n{refused.reason}")


def _site(tenant: str) -> Site:
    found = find_tenant(tenant, CRM, OneC.title)
    settings = OneCSettings.model_validate(found.config.connection)
    try:
        password = found.secret("password")
    except ConfigError as exc:
        raise Rejected(503, str(exc)) from None
    sessions = Sessions(found.name, settings.login, password, settings.session_ttl)
    return Site(found, settings, Store.of(found, settings), sessions)


def _checkauth(site: Site) -> Response:
    header = request.headers.get("Authorization")
    if not _admitted(site, header, site.sessions.authenticate(header)):
        raise UploadRefused("неверный логин или пароль обмена")
    token = site.sessions.issue()
    site.store.exchanged(clock.utcnow())  # the pulse bridge cron watches (silent_minutes)
    return site.text(f"success\n{COOKIE}\n{token}\nsessid={token}")


def _admitted(site: Site, header: str | None, right: bool) -> bool:
    """Count a wrong password against its login and address; refuse a locked-out one.

    Raises:
        UploadRefused: the login or the address is locked out (right password or not).
    """
    login, address, settings = credentials(header)[0], request.remote_addr, site.settings
    scope = f"{CRM}:{site.tenant.name}"
    guard = gate().lockout(scope, settings.max_failures, settings.lockout_minutes)
    try:
        if guard.locked(login, address):
            minutes = settings.lockout_minutes
            raise UploadRefused(f"слишком много неверных паролей: вход закрыт на {minutes} мин")
        if right:
            guard.forget(login)
        elif guard.fail(login, address):
            log.warning(
                "%s: checkauth locked out after %d wrong passwords", scope, guard.max_failures
            )
    except redis.RedisError as exc:
        # no lock-out while Redis is down: the password is still checked, the exchange goes on
        log.warning("%s: checkauth lock-out unavailable: %s", scope, type(exc).__name__)
    return right


def _init(site: Site, session: str) -> Response:
    site.store.reset(session)
    zipped = "yes" if site.settings.zip else "no"
    return site.text(f"zip={zipped}\nfile_limit={site.settings.limits.file_limit}")


def _file(site: Site, session: str) -> Response:
    if request.method != "POST":
        raise UploadRefused("файл передаётся методом POST")
    name = safe_name(request.args.get("filename", ""))
    request.max_content_length = site.settings.limits.file_limit
    try:
        site.store.append(session, name, request.stream, site.settings.limits.max_upload)
    except RequestEntityTooLarge:
        site.store.refuse(session)
        limit = site.settings.limits.file_limit
        raise UploadRefused(f"часть файла {name} больше file_limit={limit} байт") from None
    return site.text("success")


def _import(site: Site, session: str) -> Response:
    _finish(site, session)
    return site.text("success")


def _query(site: Site, session: str) -> Response:
    _finish(site, session)
    store, settings = site.store, site.settings
    with store.lock():
        pending = [(c, store.order(c.id)) for c in store.all_changes() if c.pending]
    ready = [(c, kept) for c, kept in pending if kept is not None]
    store.mark_sent(session, [(c.id, c.version) for c, _ in ready])
    body = commerceml.write(
        [kept.order.with_changes(c.notes, c.requisites) for c, kept in ready],
        encoding=settings.encoding,
        version=settings.schema_version,
        container=settings.container,
        now=clock.utcnow().astimezone(ZoneInfo(site.tenant.config.timezone)),
    )
    charset = "utf-8" if settings.encoding == "utf-8-sig" else settings.encoding
    return Response(body, content_type=f"application/xml; charset={charset}")


def _success(site: Site, session: str) -> Response:
    site.store.confirm(session)
    site.store.reset(session)  # the exchange is over: its folder goes
    return site.text("success")


def _finish(site: Site, session: str) -> None:
    """Check every file the session received, keep them and queue one batch event each;
    one refused file drops them all."""
    files = site.store.received(session)
    try:
        kinds = [inspect(path, site.settings.limits) for path in files]
    except UploadRefused:
        site.store.refuse(session)
        raise
    for path, kind in zip(files, kinds, strict=True):
        size = path.stat().st_size
        sha = site.store.keep(path, kind)
        gate().accept(
            Incoming(
                tenant=site.tenant.name,
                crm=CRM,
                source="exchange",
                type=BATCH,
                kind="",
                record_id=sha,
                dedup_key=f"onec:upload:{sha}",
                payload={"file": path.name, "bytes": size, "kind": kind},
            )
        )


STEPS: dict[str, Callable[[Site, str], Response]] = {
    "init": _init,
    "file": _file,
    "import": _import,
    "query": _query,
    "success": _success,
}
