"""The words of ``bridge try``: one line, one thing a manager (or the clock) does.

::

    new deal "Котёл для дачи" [at new] [for ivanova] [client 2|none] [amount=650000 ...]
    new lead "Заявка с сайта" [source=WEB]
    new order "Иванов Пётр" [at new] [for smirnova]   (1C: the title is the buyer)
    deal 1 to kp_sent [field=value ...]          (also: move deal 1 to kp_sent)
    deal 1 set refusal_reason="Дорого" ...
    order ДЕМО-0001 to cancelled comment="Клиент передумал, Смирнова"
    call on deal 1 [incoming|outgoing] [completed|missed]
    clock                                         (what time it is)
    clock monday 10:00 | clock 2025-11-17 10:00 | clock +2 hours | clock +3 working days
    advance the clock to monday 10:00             (the same, in words)
    sweep | show | outbox | explain [EVENT_ID] | help | quit

Stages, fields and people are the tenant's canonical names and user aliases.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, time, timedelta
from typing import Any

from bridge import yamlfile
from bridge.deadlines import parse_deadline
from bridge.email import as_text
from bridge.errors import BridgeError, ConfigError
from bridge.explanation import explain
from bridge.models import RecordRef
from bridge.schedules import DAYS
from bridge.trial.session import Happened, Trial

VERBS = ("new", "move", "call", "clock", "advance", "sweep", "show", "outbox", "explain", "help")
HELP = __doc__.split("::", 1)[1].strip("\n").rstrip() if __doc__ else ""


class Unknown(ValueError):
    """A line ``bridge try`` cannot read (the message says what it expected)."""


def play(trial: Trial, line: str) -> list[str]:
    """Run one line; returns what to show. Mistakes come back as ``error: ...`` lines."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        return [f"error: {exc}"]
    if not words:
        return []
    try:
        return _run(trial, words)
    except ConfigError as exc:
        return [f"error: {p}" for p in exc.problems]
    except (Unknown, ValueError, KeyError, BridgeError) as exc:
        text = exc.args[0] if exc.args else type(exc).__name__
        return [f"error: {text}"]


def _run(trial: Trial, words: list[str]) -> list[str]:
    verb, kinds = words[0].lower(), trial.crm.kinds()
    if verb in kinds or verb == "move":
        return report(trial, _change(trial, words[1:] if verb == "move" else words))
    handlers = {
        "new": lambda: report(trial, _new(trial, words[1:])),
        "call": lambda: report(trial, _call(trial, words[1:])),
        "clock": lambda: _clock(trial, words[1:]),
        "advance": lambda: _clock(trial, words[1:]),
        "sweep": lambda: report(trial, trial.sweep()),
        "show": lambda: show(trial),
        "outbox": lambda: [as_text(m, masked=False) for m in trial.emails()] or ["outbox empty"],
        "explain": lambda: _explain(trial, words[1:]),
        "help": lambda: HELP.splitlines(),
    }
    if verb not in handlers:
        hint = yamlfile.suggest(verb, [*VERBS, *kinds])
        raise Unknown(f"unknown command {verb!r}{hint}; `help` lists them")
    return handlers[verb]()


def _new(trial: Trial, words: list[str]) -> Happened:
    if len(words) < 2:
        raise Unknown('say what and its title: new deal "Котёл для дачи" [at STAGE] [for USER]')
    kind, title, rest = words[0], words[1], words[2:]
    _known_kind(trial, kind)
    options, fields = _options(rest, ("at", "for", "client"))
    stages = list(trial.tenant.mapping.kind(kind).stages)
    stage = options.get("at") or (stages[0] if stages else "")
    if not stage:
        raise Unknown(f"the mapping names no {kind} stage: say `at STAGE`")
    responsible = options.get("for") or _someone(trial, kind)
    return trial.new_record(kind, title, stage, responsible, _client(trial, options), fields)


def _someone(trial: Trial, kind: str) -> str:
    """The first user alias of the mapping (not the admin), preferring one the CRM names in
    records of this kind (1C names its managers: ``values.responsible``)."""
    mapping = trial.tenant.mapping
    people = [a for a in mapping.users if a != "admin"] or ["1"]
    named = set(mapping.kind(kind).values.get("responsible", {}).values())
    return next((a for a in people if mapping.users[a] in named), people[0])


def _client(trial: Trial, options: dict[str, str]) -> str | None:
    contacts = trial.stand.contacts
    given = options.get("client")
    if given == "none" or not contacts:
        return None
    if given is None:
        return contacts[len(trial.records) % len(contacts)].id
    if not given.isdigit() or not 1 <= int(given) <= len(contacts):
        raise Unknown(f"client is a number from 1 to {len(contacts)} (`show` lists them), or none")
    return contacts[int(given) - 1].id


def _change(trial: Trial, words: list[str]) -> Happened:
    if len(words) < 3 or words[2] not in ("to", "set"):
        raise Unknown("say `deal 1 to STAGE [field=value ...]` or `deal 1 set field=value ...`")
    ref = _ref(trial, words[0], words[1])
    stage = words[3] if words[2] == "to" and len(words) > 3 else None
    if words[2] == "to" and stage is None:
        raise Unknown(f"to which stage? `{words[0]} {words[1]} to STAGE`")
    _, fields = _options(words[4:] if stage else words[3:], ())
    return trial.change(ref, stage, fields)


def _call(trial: Trial, words: list[str]) -> Happened:
    words = words[1:] if words and words[0] == "on" else words
    if len(words) < 2:
        raise Unknown("say `call on deal 1 [incoming|outgoing] [completed|missed]`")
    ref = _ref(trial, words[0], words[1])
    flags = set(words[2:])
    unknown = flags - {"incoming", "outgoing", "completed", "missed"}
    if unknown:
        raise Unknown(f"a call is incoming or outgoing, completed or missed, not {unknown.pop()!r}")
    return trial.call(ref, incoming="incoming" in flags, completed="missed" not in flags)


def _clock(trial: Trial, words: list[str]) -> list[str]:
    words = [w for w in words if w.lower() not in ("the", "clock", "to", "by", "until")]
    done = report(trial, trial.advance(when(trial, " ".join(words)))) if words else []
    return [f"now: {trial.local():%A %d %B %Y %H:%M} ({trial.tenant.config.timezone})", *done]


def when(trial: Trial, text: str) -> datetime:
    """A moment the clock can move to: ``monday 10:00``, ``2025-11-17 10:00``, ``tomorrow
    09:00``, ``+2 hours``, ``+3 working days`` (from now, in the tenant's calendar)."""
    text = " ".join(text.lower().split())
    now = trial.local()
    if text.startswith("+"):
        return parse_deadline(text[1:].strip()).due(trial.tenant.calendar, now)
    found = re.fullmatch(
        r"(?:next |on )?(?P<day>[\w-]+)(?: at)? (?P<hh>\d{1,2}):(?P<mm>\d\d)", text
    )
    if not found:
        raise Unknown(
            "the clock moves to `monday 10:00`, `tomorrow 09:00`, `2025-11-17 10:00`, or by "
            "`+2 hours` / `+3 working days`"
        )
    at = time(int(found["hh"]), int(found["mm"]))
    day = found["day"]
    if day in ("today", "tomorrow"):
        date = now.date() + timedelta(days=day == "tomorrow")
    elif re.fullmatch(r"\d{4}-\d\d-\d\d", day):
        date = datetime.fromisoformat(day).date()
    else:
        weekday = next((i for i, name in enumerate(DAYS) if name.startswith(day[:3])), None)
        if weekday is None or len(day) < 3:
            raise Unknown(f"{day!r} is not a day: monday ... sunday, today, tomorrow, YYYY-MM-DD")
        ahead = (weekday - now.weekday()) % 7
        date = now.date() + timedelta(days=ahead)
        if ahead == 0 and at <= now.time():
            date += timedelta(days=7)
    return datetime.combine(date, at, tzinfo=now.tzinfo)


def _explain(trial: Trial, words: list[str]) -> list[str]:
    if words and not words[0].isdigit():
        raise Unknown("say `explain` (the last event) or `explain 12`")
    if words:
        entry = trial.rt.journal.entry(int(words[0]))
    else:
        entries = [e for e in trial.rt.journal.recent(2000, trial.name) if e["decisions"]]
        entry = entries[0] if entries else None
    if entry is None:
        what = f"no event #{words[0]}" if words else "no event yet"
        return [f"{what}: each line's answer names its events (`event #3`)"]
    return explain(entry).splitlines()


def _ref(trial: Trial, kind: str, number: str) -> RecordRef:
    _known_kind(trial, kind)
    found = trial.find(kind, number)
    if found is None:
        made = ", ".join(trial.label(r) for r in trial.records) or f"none yet (`new {kind} ...`)"
        raise Unknown(f"no {kind} {number} in this trial; made so far: {made}")
    return found


def _known_kind(trial: Trial, kind: str) -> None:
    kinds = trial.crm.kinds()
    if kind not in kinds:
        hint = yamlfile.suggest(kind, kinds)
        raise Unknown(f"{trial.crm.title} has no {kind!r}{hint}; its kinds: {', '.join(kinds)}")


def _options(words: list[str], names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, Any]]:
    """``at new for ivanova amount=5`` -> ({at: new, for: ivanova}, {amount: "5"})."""
    options: dict[str, str] = {}
    fields: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word:
            key, _, value = word.partition("=")
            fields[key] = value
        elif word in names and i + 1 < len(words):
            options[word] = words[i + 1]
            i += 1
        else:
            expected = ", ".join([*(f"{n} X" for n in names), "field=value"])
            raise Unknown(f"cannot read {word!r}; expected {expected}")
        i += 1
    return options, fields


def report(trial: Trial, seen: Happened) -> list[str]:
    """What the bridge did, as lines: tasks, comments, fields, e-mails, rules, failures."""
    lines = [f"  {what}" + (f" ({n} times)" if n > 1 else "") for what, n in seen.ran.items()]
    lines += [f"  {w.line()}" for w in (*seen.tasks, *seen.comments, *seen.fields)]
    lines += [f"  {m['Subject']!s} → {m['To']!s} (e-mail, in the outbox)" for m in seen.emails]
    lines += [f"  rule {v}" for v in seen.verdicts]
    lines += [f"  ! {f}" for f in seen.failures]
    acted = seen.tasks or seen.comments or seen.fields or seen.emails
    acted = acted or seen.verdicts or seen.failures
    return lines if acted else [*lines, "  nothing to do: no rule acted"]


def show(trial: Trial) -> list[str]:
    """The trial's state: clock, records, tasks, comments, fields, e-mails, schedules,
    clients."""
    lines = [f"now: {trial.local():%A %d %B %Y %H:%M} ({trial.tenant.config.timezone})"]
    lines.append("records:")
    for ref in trial.records:
        r = trial.record(ref)
        stage = r.outcome if r.outcome != "open" else r.stage
        lines.append(f"  {trial.label(ref)}: «{r.title}», {stage}, user {r.responsible}")
    lines.append("tasks:")
    lines += [f"  {w.line()}" for w in trial.tasks()]
    lines.append("comments:")
    lines += [f"  {w.line()}" for w in trial.comments()]
    if trial.fields():  # only where the sandbox tells the bridge's writes from people's
        lines.append("fields set by the bridge:")
        lines += [f"  {w.line()}" for w in trial.fields()]
    lines.append("e-mails:")
    lines += [f"  {m['Subject']!s} → {m['To']!s}" for m in trial.emails()]
    lines.append("sweeps:")
    lines += [f"  {s}" for s in trial.schedules()]
    lines.append("clients:")
    lines += [
        f"  {i}. {c.name} <{c.email}> {c.phone}" for i, c in enumerate(trial.stand.contacts, 1)
    ]
    return lines
