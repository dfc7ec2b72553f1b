"""The two streams reports are made of, and the violation tallies over them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bridge.models import RecordRef
from bridge.reports.tables import Table

BREACH_TITLES = {"missing": "не заполнены поля", "overdue": "просрочен срок"}
NOBODY = "не назначен"


@dataclass(frozen=True)
class Judged:
    """A rule's verdict on a record at a moment (a journaled decision, or a replayed one).

    Attributes:
        at: the moment the engine judged (the event's time).
        step: for a timer's verdict, the timer's step (0, then one per escalation).
        due: the deadline a ``scheduled`` verdict (or a step with a next one) set.
    """

    at: datetime
    ref: RecordRef
    rule: str
    verdict: str
    breach: str = ""
    due: datetime | None = None
    step: int | None = None
    responsible: str | None = None
    stage: str | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class Change:
    """A field of a record changed at a moment (``stage`` included)."""

    at: datetime
    ref: RecordRef
    field: str


@dataclass(frozen=True)
class Period:
    """A half-open span of time ``[since, until)``."""

    since: datetime
    until: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.since <= moment < self.until


def violations(items: Iterable[Judged]) -> list[Judged]:
    """The verdicts that mean a rule was broken."""
    return [item for item in items if item.breach]


def per_rule(items: Iterable[Judged]) -> Table:
    """Violations per rule, most broken first, with the kind of breach."""
    counts = Counter((v.rule, v.breach) for v in violations(items))
    rows = [(rule, BREACH_TITLES.get(b, b), n) for (rule, b), n in _ranked(counts)]
    return Table(
        "violations-by-rule", "Нарушения по правилам", ("Правило", "Нарушение", "Число"), rows
    )


def per_manager(items: Iterable[Judged], people: Mapping[str, str]) -> Table:
    """Violations per responsible manager; ``people`` maps CRM user ids to names."""
    return _tally(
        items,
        lambda v: person(v.responsible, people),
        Table("violations-by-manager", "Нарушения по менеджерам", ("Менеджер", "Число")),
    )


def per_stage(items: Iterable[Judged]) -> Table:
    """Violations per stage the record stood in."""
    return _tally(
        items,
        lambda v: v.stage or "—",
        Table("violations-by-stage", "Нарушения по этапам", ("Этап", "Число")),
    )


def per_rule_and_manager(items: Iterable[Judged], people: Mapping[str, str]) -> Table:
    """Who breaks which rule: one row per (rule, manager)."""
    counts = Counter((v.rule, person(v.responsible, people)) for v in violations(items))
    rows = [(rule, who, n) for (rule, who), n in _ranked(counts)]
    columns = ("Правило", "Менеджер", "Число")
    return Table("violations-by-rule-and-manager", "Кто нарушает какое правило", columns, rows)


def listing(items: Iterable[Judged], people: Mapping[str, str]) -> Table:
    """Every violation, one row each, in time order."""
    rows = [
        (
            v.at,
            v.rule,
            BREACH_TITLES.get(v.breach, v.breach),
            str(v.ref),
            person(v.responsible, people),
            v.stage or "—",
        )
        for v in sorted(violations(items), key=lambda v: v.at)
    ]
    columns = ("Когда (UTC)", "Правило", "Нарушение", "Запись", "Менеджер", "Этап")
    return Table("violations", "Нарушения", columns, rows)


def person(user_id: str | None, people: Mapping[str, str]) -> str:
    """A manager's name for a CRM user id: ``ivanova (3)``, or the id, or «не назначен»."""
    if not user_id:
        return NOBODY
    name = people.get(user_id)
    return f"{name} ({user_id})" if name else user_id


def _tally(items: Iterable[Judged], key: Callable[[Judged], str], empty: Table) -> Table:
    counts = Counter(key(v) for v in violations(items))
    return Table(empty.name, empty.title, empty.columns, [(k, n) for k, n in _ranked(counts)])


def _ranked(counts: Counter) -> list:
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
