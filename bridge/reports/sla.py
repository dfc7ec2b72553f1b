"""SLA compliance per rule: how often a deadline is kept, and how long the work takes.

An *episode* is one run of a timed rule on one record: it opens at the verdict that set the
timer of the rule's breach step (:func:`bridge.regulations.engine.breach_step`) and closes at
that timer's verdict: ``fired`` (missed) or anything else (met: ``unless`` held, or the
record moved on). The deadline is ``due - start``. The time taken ends at the first change,
after the start, of a field the rule's ``unless`` reads or of the stage; a met episode with
no such change ends at its timer; a missed one that nothing has ended yet is still running
and counts up to ``now`` (so its time taken is a lower bound).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.models import RecordRef
from bridge.regulations.engine import FIRED, SCHEDULED, breach_step
from bridge.regulations.pack import Rule
from bridge.reports.tables import Table
from bridge.reports.verdicts import Change, Judged, Period


@dataclass
class Episode:
    """One deadline of one rule on one record."""

    rule: str
    ref: RecordRef
    start: datetime
    due: datetime
    met: bool | None = None  # None while the timer has not fired
    ended: datetime | None = None

    @property
    def deadline(self) -> timedelta:
        """How long the rule allowed."""
        return self.due - self.start

    def taken(self, now: datetime) -> timedelta:
        """How long the work took (up to ``now`` while nothing ended it)."""
        return (self.ended or now) - self.start


@dataclass(frozen=True)
class Compliance:
    """One rule's figures over a period."""

    rule: str
    episodes: int
    met: int
    median: timedelta
    p90: timedelta
    deadline: timedelta

    @property
    def share(self) -> float:
        """The share of episodes met in time, 0..1."""
        return self.met / self.episodes if self.episodes else 0.0


def episodes(
    items: Iterable[Judged], changes: Iterable[Change], rules: Mapping[str, Rule]
) -> list[Episode]:
    """Every episode the verdicts show, ended by the changes (see the module's doc)."""
    open_: dict[tuple[str, RecordRef], Episode] = {}
    done: list[Episode] = []
    for item in sorted(items, key=lambda i: i.at):
        rule = rules.get(item.rule)
        step = breach_step(rule) if rule else None
        if step is None:
            continue
        key = (item.rule, item.ref)
        if _opens(item, step) and item.due is not None:
            found = open_.get(key)
            if found is None:
                open_[key] = Episode(item.rule, item.ref, item.at, item.due)
            else:
                found.due = item.due  # the timer moved: the same episode, a new deadline
        elif item.step == step and key in open_:
            episode = open_.pop(key)
            episode.met = item.verdict != FIRED
            episode.ended = item.at if episode.met else None
            done.append(episode)
    _end_by_changes(done, changes, rules)
    return done


def _opens(item: Judged, step: int) -> bool:
    if step == 0:
        return item.verdict == SCHEDULED and item.step in (None, 0)
    return item.verdict == FIRED and item.step == step - 1


def _end_by_changes(
    found: list[Episode], changes: Iterable[Change], rules: Mapping[str, Rule]
) -> None:
    by_record: dict[RecordRef, list[Change]] = defaultdict(list)
    for change in sorted(changes, key=lambda c: c.at):
        by_record[change.ref].append(change)
    for episode in found:
        watched = _watched(rules[episode.rule])
        after = (
            c.at
            for c in by_record.get(episode.ref, [])
            if c.at > episode.start and c.field in watched
        )
        first = next(after, None)
        if first is not None and (episode.ended is None or first < episode.ended):
            episode.ended = first


def _watched(rule: Rule) -> set[str]:
    fields = set(rule.unless.fields()) if rule.unless is not None else set()
    return fields if rule.keep_after_stage_change else fields | {"stage"}


def compliance(found: Iterable[Episode], period: Period, now: datetime) -> list[Compliance]:
    """Per rule: episodes started in ``period`` whose timer has fired."""
    by_rule: dict[str, list[Episode]] = defaultdict(list)
    for episode in found:
        if episode.met is not None and episode.start in period:
            by_rule[episode.rule].append(episode)
    out = []
    for rule, group in sorted(by_rule.items()):
        taken = sorted(e.taken(now) for e in group)
        deadlines = sorted(e.deadline for e in group)
        out.append(
            Compliance(
                rule,
                len(group),
                sum(1 for e in group if e.met),
                percentile(taken, 50),
                percentile(taken, 90),
                percentile(deadlines, 50),
            )
        )
    return out


def percentile(values: Sequence[timedelta], pct: int) -> timedelta:
    """The nearest-rank percentile of sorted values (zero for none)."""
    if not values:
        return timedelta(0)
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]


def table(rows: Iterable[Compliance]) -> Table:
    """The SLA report as a table (durations in hours)."""
    columns = (
        "Правило",
        "Случаев",
        "В срок",
        "Доля в срок, %",
        "Медиана, ч",
        "90-й перцентиль, ч",
        "Срок, ч",
    )
    data = [
        (
            r.rule,
            r.episodes,
            r.met,
            round(100 * r.share, 1),
            hours(r.median),
            hours(r.p90),
            hours(r.deadline),
        )
        for r in rows
    ]
    return Table("sla", "Соблюдение сроков", columns, data)


def hours(span: timedelta) -> float:
    """A duration in hours, two decimals."""
    return round(span.total_seconds() / 3600, 2)
