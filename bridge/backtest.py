"""Backtest: a regulation pack replayed over the CRM's history, writing nothing anywhere.

The CRM's connector reads the stage moves since a date (:meth:`Connector.history`); the
engine judges them in time order, with the tenant's calendar and people, and SLA timers fire
inside the replay when their time comes. The result counts what the pack would have flagged,
per rule and per manager, with the same code as the admin pages' reports.

What the past cannot tell, and how the replay reads it (docs/operations.md, "Backtest"):
CRMs keep a history of stages, not of every field, so a record's other fields are its
current ones; a field the rule's ``unless`` reads that holds a time later than the moment
judged counts as empty then (it was filled later); look-ups see the replayed records as they
stood at that moment; sweeps and activities are not replayed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge import clock, config
from bridge.calendar import as_datetime
from bridge.config import Tenant
from bridge.crms.connector import Connector, Step
from bridge.errors import ConfigError
from bridge.models import OPEN, Event, LookupQuery, Plan, Record, RecordRef, Timer
from bridge.pipeline import tenant_context
from bridge.regulations.engine import NOT_MATCHED, Facts, evaluate, needed_lookups
from bridge.regulations.pack import Pack
from bridge.reports import sla, verdicts
from bridge.reports.tables import Table
from bridge.reports.verdicts import Change, Judged, Period

Progress = Callable[[int, int], None]
"""Called with (steps replayed, steps in all) as the replay goes."""

EVERY = 25  # steps between two progress reports


@dataclass
class Result:
    """What a pack would have flagged over a stretch of history."""

    tenant: str
    pack: str
    since: datetime
    until: datetime
    steps: int
    records: int
    judged: list[Judged]
    changes: list[Change]
    people: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        """How many times a rule would have been broken."""
        return len(verdicts.violations(self.judged))

    def tables(self) -> dict[str, Table]:
        """The reports, by name: per rule, per manager, per stage, who-what, SLA, the list."""
        found = self.judged
        episodes = sla.episodes(found, self.changes, self.rules)
        period = Period(self.since, self.until)
        return {
            "violations-by-rule": verdicts.per_rule(found),
            "violations-by-manager": verdicts.per_manager(found, self.people),
            "violations-by-stage": verdicts.per_stage(found),
            "violations-by-rule-and-manager": verdicts.per_rule_and_manager(found, self.people),
            "sla": sla.table(sla.compliance(episodes, period, self.until)),
            "violations": verdicts.listing(found, self.people),
        }

    def per_rule(self) -> dict[str, int]:
        """Violations per rule id."""
        return dict(Counter(v.rule for v in verdicts.violations(self.judged)))

    def per_manager(self) -> dict[str, int]:
        """Violations per responsible CRM user id (``""`` for none)."""
        return dict(Counter(v.responsible or "" for v in verdicts.violations(self.judged)))


def kinds_of(pack: Pack, offered: Iterable[str]) -> list[str]:
    """The record kinds a pack's rules may judge (all the CRM offers when a rule says none)."""
    offered = list(offered)
    named = {k for rule in pack.rules for k in (rule.when.kind or offered)}
    return [k for k in offered if k in named]


def run(
    tenant: Tenant,
    pack: Pack,
    connector: Connector,
    since: datetime,
    now: datetime,
    progress: Progress | None = None,
) -> Result:
    """Read the history of every kind the pack judges, then replay it (see the module doc).

    Raises:
        NotImplementedError: the tenant's CRM keeps no history the bridge can read.
        bridge.errors.TransientError: the CRM could not be read now.
    """
    kinds = kinds_of(pack, tenant.mapping.kinds or ["deal"])
    steps = sorted(
        itertools.chain.from_iterable(connector.history(kind, since) for kind in kinds),
        key=lambda s: s.at,
    )
    return replay(replace(tenant, packs=[pack]), pack.pack, steps, since, now, progress)


def replay(
    tenant: Tenant,
    pack: str,
    steps: list[Step],
    since: datetime,
    now: datetime,
    progress: Progress | None = None,
) -> Result:
    """Judge recorded steps in time order, firing timers as their time comes; no I/O."""
    run_ = _Replay(tenant, now)
    for done, step in enumerate(steps, 1):
        run_.fire_until(step.at)
        run_.step(step)
        if progress and (done % EVERY == 0 or done == len(steps)):
            progress(done, len(steps))
    run_.fire_until(now)
    if progress and not steps:
        progress(0, 0)
    return Result(
        tenant=tenant.name,
        pack=pack,
        since=since,
        until=now,
        steps=len(steps),
        records=len(run_.records),
        judged=run_.judged,
        changes=run_.changes + run_.stamps(),
        people={uid: alias for alias, uid in tenant.mapping.users.items()},
        rules={r.id: r for r in tenant.rules},
    )


@dataclass
class _Stay:
    """Where a replayed record stands: its state, its stay number and since when."""

    record: Record
    stay: int
    since: datetime
    moves: int = 0


class _Replay:
    """The state of one replay: records, pending timers, what was judged."""

    def __init__(self, tenant: Tenant, now: datetime) -> None:
        self.tenant = tenant
        self.now = now
        self.records: dict[RecordRef, _Stay] = {}
        self.judged: list[Judged] = []
        self.changes: list[Change] = []
        self._timers: dict[str, Timer] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._stamped = {f for r in tenant.rules if r.unless for f in r.unless.fields()}

    def step(self, step: Step) -> None:
        """Judge one recorded moment of one record."""
        ref = step.record.ref
        known = self.records.get(ref)
        previous = self._as_of(known.record, step.at) if known else None
        if known is None or known.record.stage != step.record.stage:
            moves = known.moves + 1 if known else 0
            stay = (known.stay + 1) if known else 1
            known = self.records[ref] = _Stay(step.record, stay, step.at, moves)
            if moves:
                self.changes.append(Change(step.at, ref, "stage"))
        known.record = step.record
        kind = "record.created" if step.created else "record.updated"
        event = Event(self.tenant.name, step.record.crm, kind, ref, step.at, "backtest")
        self._judge(event, self._as_of(step.record, step.at), previous, known)

    def fire_until(self, moment: datetime) -> None:
        """Fire every pending timer due at or before ``moment``, in due order."""
        while self._heap and self._heap[0][0] <= moment:
            due, _, timer_id = heapq.heappop(self._heap)
            timer = self._timers.get(timer_id)
            if timer is None or timer.due != due:
                continue  # moved or fired already: a stale heap entry
            del self._timers[timer_id]
            known = self.records[timer.ref]
            event = Event(
                self.tenant.name,
                known.record.crm,
                "timer.due",
                timer.ref,
                due,
                "backtest",
                subject=timer.subject,
            )
            self._judge(event, self._as_of(known.record, due), None, known, timer.step)

    def _judge(
        self,
        event: Event,
        record: Record,
        previous: Record | None,
        known: _Stay,
        step: int | None = None,
    ) -> None:
        rules = self.tenant.rules
        base = tenant_context(self.tenant, event, str(known.stay))
        queries = needed_lookups(event, record, previous, rules, base)
        facts = Facts(
            stage_since=known.since,
            lookups={
                r: {n: self._find(q, event.received_at) for n, q in qs.items()}
                for r, qs in queries.items()
            },
            history={"stage": known.moves},
        )
        plan = evaluate(event, record, previous, rules, replace(base, facts=facts))
        self._keep(plan, event, record, step)

    def _keep(self, plan: Plan, event: Event, record: Record, step: int | None) -> None:
        timed = event.type == "timer.due"
        self.judged += [
            Judged(
                at=event.received_at,
                ref=record.ref,
                rule=d.rule,
                verdict=d.verdict,
                breach=d.breach,
                due=d.due,
                step=step,
                responsible=record.responsible,
                stage=record.stage,
            )
            for d in plan.decisions
            if timed or d.verdict != NOT_MATCHED
        ]
        for timer in plan.timers:
            self._timers[timer.id] = timer
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer.id))

    def _as_of(self, record: Record, moment: datetime) -> Record:
        """The record as it stood at ``moment``: a done-at stamp from later counts as empty."""
        zone = self.tenant.calendar.timezone
        later = {
            name
            for name in self._stamped
            if (stamp := as_datetime(record.fields.get(name), zone)) is not None and stamp > moment
        }
        if not later:
            return record
        return replace(record, fields={**record.fields, **dict.fromkeys(later)})

    def _find(self, query: LookupQuery, moment: datetime) -> tuple[Record, ...]:
        """A look-up answered from the replayed records as they stood at ``moment``."""
        return tuple(
            self._as_of(s.record, moment)
            for ref, s in self.records.items()
            if ref.kind == query.kind and _matches(s.record, query)
        )

    def stamps(self) -> list[Change]:
        """The done-at stamps of fields ``unless`` reads, as changes at their own time."""
        zone = self.tenant.calendar.timezone
        return [
            Change(moment, ref, name)
            for ref, s in self.records.items()
            for name in self._stamped
            if (moment := as_datetime(s.record.fields.get(name), zone)) is not None
        ]


def _matches(record: Record, query: LookupQuery) -> bool:
    if query.exclude is not None and record.ref == query.exclude:
        return False
    if query.open_only and record.outcome != OPEN:
        return False
    if query.in_stage and not any(record.in_stage(s) for s in query.in_stage):
        return False
    return all(str(record.value(k) or "") == str(v) for k, v in query.where)


def pack_of(tenant: Tenant, name: str) -> Pack:
    """One of the tenant's packs by name, or a pack file checked against the tenant.

    Raises:
        ConfigError: no such pack, or the file's problems with file:line.
    """
    for pack in tenant.packs:
        if pack.pack == name:
            return pack
    if Path(name).is_file():
        return config.pack_for(tenant, name)
    known = ", ".join(p.pack for p in tenant.packs) or "none"
    raise ConfigError([f"no pack {name!r}: give a pack file, or one of {tenant.name}'s: {known}"])


def summary(result: Result) -> dict[str, Any]:
    """What a backtest job hands back: its figures and report tables (picklable)."""
    return {
        "tenant": result.tenant,
        "pack": result.pack,
        "since": result.since,
        "until": result.until,
        "steps": result.steps,
        "records": result.records,
        "violations": result.violations,
        "tables": result.tables(),
    }


def job(tenant_name: str, pack: str, since: str) -> dict[str, Any]:
    """The rq job behind the admin page: progress goes to the job's meta as it runs."""
    from rq import get_current_job

    from bridge import runtime

    rt = runtime.current()
    tenant = rt.tenant(tenant_name)
    if tenant is None:
        raise ConfigError([f"tenant {tenant_name!r} is not configured"])
    current = get_current_job()

    def report(done: int, total: int) -> None:
        if current is not None:
            current.meta.update(done=done, total=total)
            current.save_meta()

    found = run(
        tenant,
        pack_of(tenant, pack),
        rt.connector(tenant),
        datetime.fromisoformat(since),
        clock.utcnow(),
        report,
    )
    return summary(found)


def print_run(rt: Any, tenant_name: str, pack: str, since: str, echo: Callable[..., Any]) -> None:
    """``bridge backtest``: run with a progress bar, then print the counts.

    Raises:
        ConfigError: an unknown tenant, pack or date.
    """
    import click

    tenant = rt.tenant(tenant_name)
    if tenant is None:
        raise ConfigError([f"no tenant {tenant_name!r}; known: {', '.join(rt.settings.tenants)}"])
    try:
        start = datetime.fromisoformat(since)
    except ValueError:
        raise ConfigError([f"--since {since!r} must be a date such as 2025-01-31"]) from None
    start = as_datetime(start, tenant.config.timezone) or start
    with click.progressbar(length=1, label="replaying", file=None) as bar:

        def report(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        result = run(
            tenant, pack_of(tenant, pack), rt.connector(tenant), start, clock.utcnow(), report
        )
    for line in lines(result):
        echo(line)


def lines(result: Result) -> list[str]:
    """The counts as text: per rule, then per manager."""
    out = [
        f"{result.pack} on {result.tenant} since {result.since:%Y-%m-%d}: {result.steps} step(s) "
        f"of {result.records} record(s), {result.violations} violation(s)"
    ]
    tables = result.tables()
    for name in ("violations-by-rule", "violations-by-manager"):
        table = tables[name]
        out.append(f"{table.title}:")
        out += ["  " + " · ".join(str(v) for v in row) for row in table.rows] or ["  —"]
    return out
