"""One ``bridge try`` session: the sandbox, the bridge beside it, and the trial's clock."""

from __future__ import annotations

import email as emaillib
import email.policy
import logging
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint

from bridge import clock, config, crms, queue, sweeps, timers
from bridge.app import create_app
from bridge.config import Tenant
from bridge.errors import ConfigError
from bridge.journal import migrate
from bridge.models import Record, RecordRef
from bridge.runtime import Runtime
from bridge.sandbox import Stand, Written
from bridge.sandbox.server import LoopbackServer
from bridge.schedules import parse_schedule
from bridge.services import EmbeddedRedis
from bridge.trial.setup import sandbox_config
from bridge.vocabulary import Vocabulary
from bridge.worker import run_worker

SETTLE_ROUNDS = 10
MAX_STEPS = 100_000
"""Timers and sweeps one move of the clock may run, at most."""


@dataclass
class Happened:
    """What one command made the bridge do."""

    tasks: list[Written] = field(default_factory=list)
    comments: list[Written] = field(default_factory=list)
    fields: list[Written] = field(default_factory=list)
    emails: list[EmailMessage] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ran: Counter[str] = field(default_factory=Counter)
    """What came due as the clock moved: ``timer quote-sla step 0 at Mon 17 Nov 12:00``, or a
    sweep schedule, with how many times."""


class Trial:
    """A tenant's pack running on a sandbox of its CRM, with a clock of its own.

    Args:
        tenant: the tenant's name in the config.
        config_path: the tenants file (default: ``$BRIDGE_CONFIG``, else config/bridge.yaml).
        start: the trial's first "now" (default: the real one).
        redis_url: a Redis to use (default: a private embedded one, never ``$REDIS_URL``:
            a trial must not feed its events to the workers of a real bridge).
        port: the port of the bridge and the page (0: any free one).
        pages: blueprints to serve beside the webhooks, each built for this trial.

    Raises:
        ConfigError: the config is invalid, or names no such tenant, or its CRM ships no
            sandbox.
    """

    def __init__(
        self,
        tenant: str,
        *,
        config_path: str | None = None,
        start: datetime | None = None,
        redis_url: str | None = None,
        port: int = 0,
        pages: Sequence[Callable[[Trial], Blueprint]] = (),
    ) -> None:
        settings = config.load(config_path)
        own = _tenant(settings, tenant)
        self.name = tenant
        self.crm = crms.get(own.config.crm)
        self.lock = threading.RLock()
        zone = ZoneInfo(own.config.timezone)
        start = start or clock.utcnow()
        self.moment = (start if start.tzinfo else start.replace(tzinfo=zone)).astimezone(zone)
        self._pages = pages
        self.workdir = Path(tempfile.mkdtemp(prefix="bridge-try-"))
        self.records: list[RecordRef] = []
        self._real_clock: Callable[[], datetime] = clock.utcnow
        self.stands = _stands(settings, own)
        """The tenant's stand first, then the one of the tenant its tasks go to (``tasks_in``)."""
        for one in self.stands.values():
            one.start()
        try:
            self._build(settings.path, redis_url, port)
        except BaseException:
            for one in self.stands.values():
                one.stop()
            raise

    def _build(self, config_path: Path, redis_url: str | None, port: int) -> None:
        connections = {}
        for name, one in self.stands.items():
            connections[name], secrets = one.connection()
            os.environ.update(secrets)
        path = sandbox_config(config_path, connections, self.workdir)
        journal = f"sqlite:///{self.workdir / 'journal.db'}"
        migrate(journal)  # a fresh journal: its schema first, as `bridge migrate` does
        self._redis = None if redis_url else EmbeddedRedis()
        url = redis_url or self._redis.url  # type: ignore[union-attr]
        self.rt = Runtime.build(str(path), journal, url)
        for name in ("werkzeug", "bridge"):  # the trial prints what matters itself
            logging.getLogger(name).setLevel(logging.WARNING)
        app = create_app(runtime=self.rt)
        for page in self._pages:
            app.register_blueprint(page(self))
        self.server = LoopbackServer(app, port=port).start()
        clock.utcnow = self.now  # the one clock of the process is the trial's from here
        for name, one in self.stands.items():
            one.set_clock(self.now)
            one.seed(self.rt.settings.tenants[name])
            one.connect(self.rt, self.server.url)
        self.stand.seed_contacts()
        self._last_sweep = {text: self.moment for text in sweeps.schedules(self.tenant)}
        self.settle()

    # -- what the session is ------------------------------------------------------------

    @property
    def tenant(self) -> Tenant:
        """The tenant as the bridge runs it (on the sandbox)."""
        found = self.rt.tenant(self.name)
        assert found is not None
        return found

    @property
    def url(self) -> str:
        """The page: ``http://127.0.0.1:<port>/try``."""
        return f"{self.server.url}/try"

    @property
    def stand(self) -> Stand:
        """The sandbox, dressed as the tenant's account."""
        return self.stands[self.name]

    def tasks(self) -> list[Written]:
        """The tasks the bridge made, in the tenant's CRM or in its ``tasks_in`` one; their
        deadlines in the tenant's zone (a sandbox keeps them in its portal's)."""
        tasks = [task for one in self.stands.values() for task in one.tasks()]
        return [replace(t, deadline=self.local(t.deadline)) if t.deadline else t for t in tasks]

    def comments(self) -> list[Written]:
        """The comments the bridge wrote into records."""
        return [comment for one in self.stands.values() for comment in one.comments()]

    def fields(self) -> list[Written]:
        """The fields the bridge set, where the sandbox tells them (1C's requisites)."""
        return [one_field for one in self.stands.values() for one_field in one.fields()]

    def label(self, ref: RecordRef) -> str:
        """How the trial names a record: ``deal 5``, ``order ДЕМО-0001``."""
        return f"{ref.kind} {self.stand.label(ref.kind, ref.id)}"

    def find(self, kind: str, word: str) -> RecordRef | None:
        """The trial's record of a kind named by its id, the CRM's own name for it
        (``ДЕМО-0001``, any case), or the number that name ends in (``1``)."""
        for ref in self.records:
            if ref.kind == kind and _names(word, ref.id, self.stand.label(kind, ref.id)):
                return ref
        return None

    def now(self) -> datetime:
        """The trial's "now" (aware, UTC): it moves only when :meth:`advance` moves it."""
        return self.moment.astimezone(UTC)

    def local(self, moment: datetime | None = None) -> datetime:
        """A moment (default: now) in the tenant's zone."""
        return (moment or self.moment).astimezone(ZoneInfo(self.tenant.config.timezone))

    def close(self) -> None:
        """Stop the page, the bridge and the sandbox; give the process its clock back."""
        clock.utcnow = self._real_clock
        self.server.stop()
        for one in self.stands.values():
            one.stop()
        if self._redis is not None:
            self._redis.stop()

    # -- playing ------------------------------------------------------------------------

    def new_record(
        self,
        kind: str,
        title: str,
        stage: str,
        responsible: str,
        client: str | None,
        fields: dict[str, Any],
    ) -> Happened:
        """A manager creates a record; returns what the bridge did about it.

        Raises:
            ValueError: a stage, user or field the tenant's mapping does not know.
        """
        stage, responsible, fields = self._words(kind, stage, responsible, fields)
        with self._watch() as seen:
            record_id = self.stand.add_record(
                kind, title, stage, responsible, contact=client, fields=fields
            )
            self.records.append(RecordRef(kind, record_id))
        return seen

    def change(self, ref: RecordRef, stage: str | None, fields: dict[str, Any]) -> Happened:
        """A manager moves a record and/or sets its fields.

        Raises:
            ValueError: a stage or field the tenant's mapping does not know.
        """
        stage, _, fields = self._words(ref.kind, stage, None, fields)
        with self._watch() as seen:
            self.stand.update_record(ref.kind, ref.id, stage=stage, fields=fields)
        return seen

    def call(self, ref: RecordRef, *, incoming: bool, completed: bool) -> Happened:
        """A call is logged on a record.

        Raises:
            ValueError: the CRM's sandbox logs no calls (1C's exchange carries none).
        """
        with self._watch() as seen:
            self.stand.add_call(ref.kind, ref.id, incoming=incoming, completed=completed)
        return seen

    def sweep(self) -> Happened:
        """Every sweep rule, now."""
        with self._watch() as seen:
            sweeps.sweep(self.rt, self.name)
        return seen

    def advance(self, to: datetime) -> Happened:
        """Move the clock to ``to``: timers and scheduled sweeps come due on the way, each at
        its own time, in order."""
        if to <= self.moment:
            raise ValueError(f"the clock only moves forward (now {self.local():%Y-%m-%d %H:%M})")
        with self._watch() as seen:
            for _ in range(MAX_STEPS):
                step = self._next_due(to)
                if step is None:
                    break
                moment, what, run = step
                self.moment = moment
                seen.ran[what.format(at=f"{self.local():%a %d %b %H:%M}")] += 1
                run()
                self.settle()
            self.moment = to
        return seen

    def settle(self) -> None:
        """Let every webhook reach the bridge and every queued job run (echoes included)."""
        for _ in range(SETTLE_ROUNDS):
            for one in self.stands.values():
                one.wait_delivered()  # a posted hook is journaled and queued when it returns
            if not self._busy():
                return
            run_worker(self.rt, burst=True, in_thread=True)

    def _busy(self) -> bool:
        """Events or jobs wait, or a timer is due by the trial's now."""
        if self.rt.queue.waiting(self.name) or queue.jobs_queue(self.rt.redis).count:
            return True
        due = timers.pending(self.rt.redis, self.name)
        return bool(due) and due[0][1] <= self.now()

    # -- looking ------------------------------------------------------------------------

    def record(self, ref: RecordRef) -> Record:
        """A record as the bridge reads it (canonical)."""
        return self.rt.connector(self.tenant).fetch(ref)

    def emails(self) -> list[EmailMessage]:
        """The e-mails in the outbox, oldest first."""
        folder = self.workdir / "outbox"
        files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [_message(p) for p in files]

    def schedules(self) -> list[str]:
        """The sweep schedules and the next run of each, in words."""
        zone = self.tenant.config.timezone
        out = []
        for text, rules in sweeps.schedules(self.tenant).items():
            schedule = parse_schedule(text)
            last = self._last_sweep.get(text, self.moment)
            due = self.local(schedule.next_after(last, self.tenant.calendar))
            out.append(f"{', '.join(rules)}: {schedule.describe(zone)}; next {due:%a %d %b %H:%M}")
        return out

    # -- inside -------------------------------------------------------------------------

    def _words(
        self, kind: str, stage: str | None, who: str | None, fields: dict[str, Any]
    ) -> tuple[Any, Any, dict[str, Any]]:
        """Canonical stage, user and fields, or a ValueError naming the ones to use."""
        words = Vocabulary(self.crm.name, self.tenant.mapping, tuple(self.crm.kinds()))
        if kind not in self.crm.kinds():
            words.record({"kind": kind})  # raises, listing the kinds
        canonical = words.stage(kind, stage)[0] if stage is not None else None
        return canonical, words.user(who) if who else None, words.fields(kind, fields)

    def _next_due(self, until: datetime) -> tuple[datetime, str, Callable[[], None]] | None:
        """The first timer or scheduled sweep due by ``until``: when, what, how to run it."""
        found: list[tuple[datetime, str, Callable[[], None]]] = []
        for member, due in timers.pending(self.rt.redis, self.name)[:1]:  # the earliest
            if due <= until:
                _, kind, record_id, subject = timers.parse(member)
                rule, step, _ = subject.split("|")
                on = self.label(RecordRef(kind, record_id))
                what = f"timer {rule} step {step} on {on} at {{at}}"
                found.append((max(due, self.moment), what, lambda: None))  # settle fires it
        calendar = self.tenant.calendar
        for text, rules in sweeps.schedules(self.tenant).items():
            due = parse_schedule(text).next_after(self._last_sweep[text], calendar)
            if due <= until:
                what = f"sweep {', '.join(rules)} ({text})"
                found.append((due, what, lambda t=text, r=rules, d=due: self._scheduled(t, r, d)))
        return min(found, key=lambda item: item[0]) if found else None

    def _scheduled(self, text: str, rules: list[str], due: datetime) -> None:
        self._last_sweep[text] = due
        sweeps.sweep(self.rt, self.name, rules)

    def _last_event(self) -> int:
        latest = self.rt.journal.recent(1)
        return latest[0]["event"].id if latest else 0

    def _watch(self) -> _Watch:
        return _Watch(self)


class _Watch:
    """Collects what the bridge did while a command ran (a context manager)."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self.seen = Happened()

    def __enter__(self) -> Happened:
        t = self.trial
        t.lock.acquire()
        self.before = t.tasks(), t.comments(), t.fields()
        self.emails, self.event = len(t.emails()), t._last_event()
        return self.seen

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        t = self.trial
        try:
            if error is None:
                t.settle()
            tasks, comments, fields = self.before
            self.seen.tasks = _new(tasks, t.tasks())
            self.seen.comments = _new(comments, t.comments())
            self.seen.fields = _new(fields, t.fields())
            self.seen.emails = t.emails()[self.emails :]
            self._journal()
        finally:
            t.lock.release()

    def _journal(self) -> None:
        entries = self.trial.rt.journal.recent(200, self.trial.name)
        for entry in reversed([e for e in entries if e["event"].id > self.event]):
            e = entry["event"]
            ref = RecordRef(e.kind, e.record_id) if e.kind and e.record_id else None
            what = self.trial.label(ref) if ref else e.type or e.source
            acted = {a.rule for a in entry["actions"]}  # a rule whose actions were all done
            for d in entry["decisions"]:  # before (same stay) did nothing new: not shown
                if d.verdict == "scheduled" or (d.verdict == "fired" and d.rule in acted):
                    self.seen.verdicts.append(f"{d.rule} {d.verdict} ({what}, event #{e.id})")
            if e.status in ("failed", "retrying"):
                self.seen.failures.append(f"#{e.id} {what}: {e.status}: {e.reason}")
            for a in entry["actions"]:
                if a.status == "failed":
                    self.seen.failures.append(f"#{e.id} {a.kind} failed: {a.error}")


def _tenant(settings: config.Settings, name: str) -> Tenant:
    if name not in settings.tenants:
        from bridge import yamlfile

        hint = yamlfile.suggest(name, settings.tenants)
        listing = ", ".join(settings.tenants) or "none"
        raise ConfigError([f"{settings.path}: no tenant {name!r}{hint}; its tenants: {listing}"])
    return settings.tenants[name]


def _stands(settings: config.Settings, tenant: Tenant) -> dict[str, Stand]:
    """A stand for the tenant's CRM, and one for the CRM of the tenant that makes its tasks
    (``tasks_in``: 1C has no tasks of its own), each to be seeded from its tenant's mapping.

    Raises:
        ConfigError: a CRM that ships no sandbox.
    """
    names = [tenant.name, *([tenant.config.tasks_in] if tenant.config.tasks_in else [])]
    stands = {}
    for name in names:
        crm = crms.get(settings.tenants[name].config.crm)
        stand_class = crm.stand_class()
        if stand_class is None:
            raise ConfigError([f"{crm.title} ships no sandbox to try {name} on"])
        stands[name] = stand_class()
    return stands


def _new(before: list[Written], after: list[Written]) -> list[Written]:
    """What ``after`` holds that ``before`` did not (a stand may list a new comment of an
    older record before the comments of newer ones)."""
    left = Counter(before)
    out = []
    for one in after:
        if left[one]:
            left[one] -= 1
        else:
            out.append(one)
    return out


def _names(word: str, record_id: str, label: str) -> bool:
    """``word`` names the record: its id, its label in any case, or the label's last number."""
    if word in (record_id, label) or word.casefold() == label.casefold():
        return True
    digits = re.search(r"(\d+)$", label)
    return word.isdigit() and digits is not None and int(digits[1]) == int(word)


def _message(path: Path) -> EmailMessage:
    message = emaillib.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
