"""A pack's scenario played end to end on a CRM's stand: the sandbox, the bridge, the journal.

The scenario files of ``config/regulations/scenarios/<pack>/`` are what ``bridge check`` runs
through the pure engine. Here each is replayed on a sandbox of a CRM the pack has a mapping
for, seeded from that mapping (:class:`bridge.sandbox.Stand`): a step's record is created or
changed in the account in canonical words (the stand translates them through the mapping), the
account posts its webhooks, the worker reads and writes through the CRM's API, and what the
step expects is read back from the account (tasks: title, description, responsible, deadline;
comments; fields and responsible of the record as the connector reads it; messages as a
messenger on loopback got them through apprise, :mod:`tests.messengers`), from the journal
(actions done, decisions) and from the timers scheduled. ``timer.due`` fires the timer the
bridge scheduled for the rule named, ``sweep`` runs the tenant's sweep, ``broadcast`` its
broadcast rules (``bridge broadcast --send``). The clock is the
scenario's.

User ids in a scenario are those of the pack's own tenant (config/bridge.yaml); they travel to
another CRM by their alias in the two mappings; the scenario's roles, constants, surnames and
per-person hours are the tenant's for the replay. A record's ``stage_since`` is when the replay
makes its ``previous``. The records a step's look-ups find (``facts: lookups``) are made in the
account first, before the bridge hears from it, each with what its look-up filters by (the
look-up's ``where``, rendered for the step's record, e.g. the client's phone); the texts'
«№180» and «сделка 180» name them by the account's ids. What no CRM replay can reproduce --
history given as facts (e-mails sent, change counts) -- is reported by :func:`unplayable`, and
the test skips with that reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from sqlalchemy import select

import bridge.clock
import bridge.sweeps
import bridge.worker
from bridge import broadcast, crms, demo, mappings, queue, runtime, timers
from bridge.app import create_app
from bridge.calendar import BusinessCalendar
from bridge.config import Tenant, parse_hours
from bridge.journal import ActionRow, DecisionRow, EventRow
from bridge.mappings import Mapping
from bridge.models import RecordRef
from bridge.regulations.text import render
from bridge.runtime import Runtime
from bridge.sandbox import Stand, Written
from bridge.sandbox.server import LoopbackServer
from bridge.scenarios import Scenario, Step
from bridge.vocabulary import Vocabulary
from bridge.worker import run_worker
from tests.messengers import Delivered, Messengers

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "bridge.yaml"
SETTLE_ROUNDS = 10


NUMBERED = re.compile(r"(?<!\w)(№\s?|сделк[аи] |лид[а]? |заказ[а]? )(\d+)\b")
"""A record named by its number in a text (the title's «Заказ 180» is a title, not a number)."""
NOT_WRITTEN = ("pipeline", "responsible")
"""Look-up filters a found record gets otherwise: its pipeline from its stage, its owner."""


class Unplayable(Exception):
    """A scenario (or step) that no webhook, timer or sweep of the CRM can reproduce."""


def tenants() -> dict[str, Any]:
    """The tenants of config/bridge.yaml (name -> block)."""
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["tenants"]


def pack_crms(pack: str) -> list[str]:
    """The CRMs a pack runs on: its tenant's own, and each ``mappings/<pack>-<crm>.yaml`` that
    no other tenant of config/bridge.yaml runs on."""
    blocks = tenants()
    own = blocks[pack]["crm"]
    claimed = {b["mapping"] for name, b in blocks.items() if name != pack}
    found = [own]
    for crm in crms.names():
        mapping = f"mappings/{pack}-{crm}.yaml"
        if crm != own and mapping not in claimed and (CONFIG.parent / mapping).exists():
            found.append(crm)
    return found


def unplayable(scenario: Scenario) -> str | None:
    """Why a scenario cannot be replayed through a CRM, or None."""
    for step in scenario.steps:
        facts = dict(step.facts)
        facts.pop("stage_since", None)  # the replay's own: `previous` is made at that moment
        facts.pop("lookups", None)  # the replay makes the records they find
        if facts:
            return f"its facts ({', '.join(facts)}) stand for history the bridge gathers itself"
    return None


class Player:
    """Plays one scenario of ``pack`` on a stand of ``crm``; collects the problems."""

    def __init__(
        self,
        pack: str,
        crm: str,
        scenario: Scenario,
        urls: tuple[str, str],
        workdir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.pack, self.crm, self.scenario = pack, crm, scenario
        self.now = scenario.steps[0].at
        self.stands = self._stands()
        self.stand = self.stands[pack]
        connections = {}
        for name, stand in self.stands.items():
            stand.start()
            block, secrets = stand.connection()
            for key, value in secrets.items():
                monkeypatch.setenv(key, value)
            own = tenants()[name]["crm"]
            connections[name] = (crm if name == pack else own, block)
        path = demo.tenants_config(connections, workdir)
        journal_url, redis_url = urls
        self.rt = Runtime.build(str(path), journal_url, redis_url)
        self.rt.redis.flushdb()  # the session's own Redis: no timer of an earlier scenario
        self.messengers = Messengers().start()
        for name in self.stands:
            for env, url in self._channel_urls(self.rt.tenant(name)).items():
                monkeypatch.setenv(env, url)
        runtime.install(self.rt)  # jobs find the runtime here
        self.server = LoopbackServer(create_app(runtime=self.rt)).start()
        self.tenant = self.rt.tenant(pack)
        self.home = _home_mapping(pack)
        monkeypatch.setattr(bridge.clock, "utcnow", lambda: self.now)
        # a scenario fires only the timer it names, in a step of its own: the workers' clock
        # stands at the epoch, and _fire makes that one timer due then
        epoch = datetime.fromtimestamp(0, UTC)
        monkeypatch.setattr(bridge.worker, "clock", SimpleNamespace(utcnow=lambda: epoch))
        self._tenant_as_the_scenario_says(monkeypatch)
        self.records: dict[str, str] = {}  # scenario record id -> the CRM's
        self.contacts: dict[str, str] = {}  # scenario contact id -> the CRM's
        self.found: set[str] = set()  # scenario ids of the records look-ups find
        self.state: dict[str, Any] | None = None
        for name, stand in self.stands.items():
            stand.set_clock(lambda: self.now)
            stand.seed(self.rt.tenant(name))
        try:
            self._seed_found()  # history the bridge never heard of: made before it listens
        except Unplayable:
            self.close()
            raise
        for stand in self.stands.values():
            stand.connect(self.rt, self.server.url)
        if self.found:
            self._settle()  # a CRM the bridge polls (1C) brings them in at its next exchange

    def _tenant_as_the_scenario_says(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The scenario's roles, constants, surnames and per-person hours over the tenant's."""
        scenario, tenant, config = self.scenario, self.tenant, self.tenant.config
        roles = {role: self._roles(who) for role, who in scenario.people.items()}
        monkeypatch.setattr(config, "roles", {**config.roles, **roles})
        monkeypatch.setattr(config, "constants", {**config.constants, **scenario.constants})
        surnames = {self._user(uid): name for uid, name in scenario.surnames.items()}
        own_surnames, own_hours = tenant.surnames(), tenant.schedules()
        monkeypatch.setattr(tenant, "surnames", lambda: own_surnames | surnames)
        zone = config.timezone
        hours = {
            self._user(uid): BusinessCalendar(zone, parse_hours(h))
            for uid, h in scenario.staff.items()
        }
        monkeypatch.setattr(tenant, "schedules", lambda: own_hours | hours)

    def _channel_urls(self, tenant: Tenant) -> dict[str, str]:
        """Each channel's URL variable -> its messenger here (``{to}`` where a rule names
        the recipient)."""
        channels = {name: c.url_env for name, c in tenant.config.channels.items()}
        personal = {
            spec.notify.channel
            for rule in tenant.rules
            for step in rule.steps()
            for spec in step
            if spec.notify is not None and spec.notify.to
        }
        return self.messengers.urls(channels, personal)

    def close(self) -> None:
        """Stop the bridge's server, the messengers and the sandboxes."""
        self.server.stop()
        self.messengers.stop()
        for stand in self.stands.values():
            stand.stop()

    def play(self) -> list[str]:
        """Every step in order; the problems found, one line each."""
        if self.scenario.previous:
            self.now = min([self.now, *self._stage_since()])
            self._seed_previous(self.scenario.previous)
        problems: list[str] = []
        for number, step in enumerate(self.scenario.steps, 1):
            problems += [f"step {number}: {p}" for p in self._step(step)]
        return problems

    def _stage_since(self) -> list[datetime]:
        """When the scenario says its record entered its stage (the facts' ``stage_since``)."""
        found = (step.facts.get("stage_since") for step in self.scenario.steps)
        return [_when(since) for since in found if since]

    # -- the stands ----------------------------------------------------------------------

    def _stands(self) -> dict[str, Stand]:
        """The pack's stand, and the stand of the tenant its ``tasks_in`` names."""
        stands = {self.pack: _stand(self.crm)}
        paired = tenants()[self.pack].get("tasks_in")
        if paired:
            stands[paired] = _stand(tenants()[paired]["crm"])
        return stands

    # -- making the changes ----------------------------------------------------------------

    def _seed_found(self) -> None:
        """The records each step's look-ups find, made in the account with what the look-up
        filters by (its ``where`` for the step's record) over their own fields."""
        state = _normal(self.scenario.previous) if self.scenario.previous else None
        # the scenario's own records: a look-up that counts the record itself finds it made
        own = {_normal(r)["id"] for r in [self.scenario.previous, *self._step_records()] if r}
        worlds: dict[tuple[str, str, str], tuple[int, set[str]]] = {}
        for number, step in enumerate(self.scenario.steps, 1):
            state = _state_after(state, step)
            for rule_id, by_name in (step.facts.get("lookups") or {}).items():
                for name, found in by_name.items():
                    spec = self._lookup(rule_id, name)
                    where = self._where(spec, state)
                    ids = {str(r.get("id", "1")) for r in found}
                    first, seen = worlds.setdefault((rule_id, name, repr(where)), (number, ids))
                    if seen != ids:
                        raise Unplayable(
                            f"look-up {name} of {rule_id} finds {sorted(seen) or 'nothing'} in "
                            f"step {first} and {sorted(ids) or 'nothing'} in step {number} for "
                            "the same record: each step's facts are a world of their own, "
                            "and an account holds one"
                        )
                    # a found record with no stage stands where the look-up looks
                    stage = spec.in_stage[0] if spec.in_stage else (state or {}).get("stage")
                    for data in map(_normal, found):
                        if data["id"] not in own:
                            self._make_found(data, where, stage)

    def _step_records(self) -> list[dict[str, Any]]:
        return [step.record for step in self.scenario.steps if step.record is not None]

    def _make_found(self, data: dict[str, Any], where: dict[str, Any], stage: Any) -> None:
        """One record a look-up finds, with the look-up's filters; once."""
        if data["id"] in self.records:
            return
        if "responsible" in where:
            data["responsible"] = where["responsible"]
        if data.get("stage") is None and data["outcome"] == "open":
            data["stage"] = stage
        own = {k: v for k, v in where.items() if k not in NOT_WRITTEN}
        self._create({**data, "fields": {**data["fields"], **own}})
        self.found.add(data["id"])

    def _lookup(self, rule_id: str, name: str) -> Any:
        """A rule's look-up, as the pack declares it."""
        rule = next((r for r in self.tenant.rules if r.id == rule_id), None)
        spec = (rule.lookup or {}).get(name) if rule else None
        if spec is None:
            raise Unplayable(f"the facts name look-up {name} of {rule_id}, which has none")
        return spec

    def _where(self, spec: Any, state: dict[str, Any] | None) -> dict[str, Any]:
        """What a look-up filters by, for the scenario's record ``state``, in canonical values
        (a raw value of the look-up, such as SOURCE_ID's UC_EPITAF, mapped back)."""
        if state is None:
            raise Unplayable("look-up facts before the scenario has a record")
        record = Vocabulary().record(state)
        context = {"record": record, "constants": self.tenant.constants(), "now": self.now}
        values = self.tenant.mapping.kind(spec.kind).values
        out = {}
        for key, template in spec.where.items():
            value = render(template, context)
            out[key] = values.get(key, {}).get(value, value)
        return out

    def _seed_previous(self, data: dict[str, Any]) -> None:
        """The record as the bridge saw it last: made, and its events worked off."""
        self.state = _normal(data)
        self._create(self.state)
        self._settle()

    def _step(self, step: Step) -> list[str]:
        self.now = step.at
        before = self._mark()
        if step.event in ("record.created", "record.updated"):
            self._change(step)
        elif step.event == "timer.due":
            self._fire(step.timer or "")
        elif step.event == "sweep":
            bridge.sweeps.sweep(self.rt, self.pack)
        elif step.event == "broadcast":
            for rule in broadcast.broadcast_rules(self.tenant):
                if step.rule in (None, rule.id):
                    broadcast.run(self.rt, self.pack, rule.id, send=True)
        elif step.event in ("activity.created", "activity.updated") and step.activity:
            self._call(step)
        else:
            raise Unplayable(f"event {step.event} has no {self.crm} counterpart here")
        self._settle()
        return self._compare(step, before)

    def _change(self, step: Step) -> None:
        if step.record is not None:
            self.state = _normal(step.record)
            if self.state["id"] not in self.records:
                if step.event != "record.created":
                    raise Unplayable("an update of a record the bridge never saw")
                self._create(self.state)
                return
            self._update(self.state, self.state["fields"])
            return
        assert self.state is not None
        change = dict(step.change or {})
        if "title" in change or "responsible" in change:
            raise Unplayable("a title or owner change (the stands change stages and fields)")
        fields = change.pop("fields", {})
        self.state = {**self.state, **change, "fields": {**self.state["fields"], **fields}}
        self._update(self.state, fields if "stage" not in change else self.state["fields"])

    def _create(self, data: dict[str, Any]) -> None:
        fields = dict(data["fields"])
        # a client for every record (the e-mails go to it), its own unless the scenario names it
        contact = fields.pop("contact_id", f"of-record-{data['id']}")
        # the client's phone, where the record names it (a lead's own, 1C's buyer's)
        phone = fields.get("phone") or fields.get("client_phone")
        if data.get("amount") is not None:
            fields["amount"] = data["amount"]
        client = self._contact(contact, phone)
        if "contact_id" in data["fields"] and not self.stand.leads_link_contact:
            fields["contact_id"] = client  # a returning client's request names its contact
        record_id = self.stand.add_record(
            data["kind"],
            data.get("title") or "",
            self._stage(data),
            self._user(data.get("responsible") or "1"),
            contact=client,
            fields=self._fields(data["kind"], fields),
        )
        self.records[data["id"]] = record_id

    def _update(self, data: dict[str, Any], fields: dict[str, Any]) -> None:
        fields = {k: v for k, v in fields.items() if k != "contact_id"}
        self.stand.update_record(
            data["kind"],
            self.records[data["id"]],
            stage=self._stage(data),
            fields=self._fields(data["kind"], fields),
        )

    def _call(self, step: Step) -> None:
        """The step's activity logged on the record (a call, a meeting where the stand has
        them)."""
        assert self.state is not None and step.activity is not None
        kinds = step.activity.type or ["call"]
        if len(kinds) != 1:
            raise Unplayable(f"an activity of one of the types {'/'.join(kinds)}")
        incoming = step.activity.direction != "outgoing"
        completed = bool(step.activity.completed)
        try:
            self.stand.add_activity(
                self.state["kind"],
                self.records[self.state["id"]],
                kinds[0],
                incoming=incoming,
                completed=completed,
            )
        except NotImplementedError as exc:
            raise Unplayable(str(exc)) from None

    def _fire(self, rule: str) -> None:
        """Make the timer the bridge scheduled for ``rule`` due now (the settle fires it)."""
        mine = [
            (due, member)
            for member, due in timers.pending(self.rt.redis)
            if timers.parse(member)[3].startswith(f"{rule}|")
        ]
        if not mine:
            raise AssertionError(f"no timer of {rule} is scheduled")
        self.rt.redis.zadd(timers.KEY, {max(mine)[1]: 0})

    def _settle(self) -> None:
        """Let every webhook reach the bridge and every queued job run (echoes included, and
        1C's next exchange, which brings the bridge's writes back into its orders)."""
        for round_ in range(SETTLE_ROUNDS):
            for stand in self.stands.values():
                stand.wait_delivered()  # a posted hook is journaled and queued when it returns
            waiting = any(self.rt.queue.waiting(name) for name in self.stands)
            if round_ and not waiting and not queue.jobs_queue(self.rt.redis).count:
                return
            run_worker(self.rt, burst=True)  # the first round fires a timer made due

    # -- scenario words -> the CRM's canonical words on the stand ----------------------------

    def _stage(self, data: dict[str, Any]) -> str:
        outcome = data.get("outcome") or "open"
        stage = data.get("stage")
        stages = self.tenant.mapping.kind(data["kind"]).stages
        if stage in stages or stage in ("won", "lost"):
            return str(stage)
        if outcome in ("won", "lost"):
            return outcome  # a failure stage of the scenario's own CRM
        raise Unplayable(f"stage {stage!r} has no {self.crm} stage in the mapping")

    def _fields(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        km = self.tenant.mapping.kind(kind)
        for name in fields:
            if name != "amount" and name not in km.fields:
                raise Unplayable(f"field {name!r} has no {self.crm} mapping")
        return fields

    def _contact(self, contact: Any, phone: str | None = None) -> str:
        key = str(contact)
        if key not in self.contacts:
            email = f"client{key}@client.example"
            phone = phone or "+7 900 000-00-00"
            self.contacts[key] = self.stand.add_contact(f"Клиент {key}", email, phone)
        return self.contacts[key]

    def _user(self, user: Any) -> str:
        """The target CRM's id of a scenario's user (the pack's own tenant's id, or alias)."""
        text = str(user)
        target = self.tenant.mapping.users
        if text in target:
            return target[text]
        alias = next((a for a, uid in self.home.users.items() if uid == text), None)
        if alias is not None and alias in target:
            return target[alias]
        if self.home.users is target or self.crm == tenants()[self.pack]["crm"]:
            return text  # the pack's own CRM: its ids as they are
        raise Unplayable(f"user {text} has no alias in both mappings")

    def _roles(self, who: str | list[str]) -> str | list[str]:
        if isinstance(who, str):
            return self._user(who)
        return [self._user(one) for one in who]

    # -- reading the results back ----------------------------------------------------------

    def _mark(self) -> dict[str, Any]:
        with self.rt.journal.session() as s:
            last_action = max(s.scalars(select(ActionRow.id)).all(), default=0)
            last_event = max(s.scalars(select(EventRow.id)).all(), default=0)
        return {
            "action": last_action,
            "event": last_event,
            "timers": self._timers(),
            "tasks": len(self._written("tasks")),
            "comments": len(self._written("comments")),
            "messages": len(self.messengers.got),
        }

    def _written(self, what: str) -> list[Written]:
        return [w for stand in self.stands.values() for w in getattr(stand, what)()]

    def _timers(self) -> dict[str, tuple[str, int, datetime]]:
        out = {}
        for member, due in timers.pending(self.rt.redis):
            rule, step, _ = timers.parse(member)[3].split("|")
            out[member] = (rule, int(step), due)
        return out

    def _compare(self, step: Step, before: dict[str, Any]) -> list[str]:
        expect, problems = step.expect, []
        with self.rt.journal.session() as s:
            rows = s.scalars(select(ActionRow).where(ActionRow.id > before["action"])).all()
            events = s.scalars(select(EventRow.id).where(EventRow.id > before["event"])).all()
            decisions = s.scalars(select(DecisionRow).where(DecisionRow.event_id.in_(events))).all()
        if expect.actions is not None:
            written = {
                "tasks": self._written("tasks")[before["tasks"] :],
                "comments": self._written("comments")[before["comments"] :],
                "notify": self.messengers.got[before["messages"] :],
            }
            problems += self._compare_actions(expect.actions, list(rows), written)
        if expect.timers is not None:
            problems += self._compare_timers(expect.timers, before["timers"])
        for rule, verdict in expect.decisions.items():
            seen = [d.verdict for d in decisions if d.rule == rule]
            # sweeps and broadcasts journal only what fired
            sweep_quiet = step.event in ("sweep", "broadcast") and not seen
            ok = sweep_quiet and verdict != "fired"
            ok = ok or (verdict in seen and (verdict == "fired" or "fired" not in seen))
            if not ok:
                problems.append(f"rule {rule}: expected {verdict}, the journal says {seen}")
        return problems

    def _compare_actions(
        self, want: list[dict[str, Any]], rows: list[ActionRow], written: dict[str, list[Written]]
    ) -> list[str]:
        if len(want) != len(rows):
            done = "; ".join(f"{r.kind} [{r.status}] {r.summary}" for r in rows) or "none"
            return [f"expected {len(want)} action(s), the bridge did {len(rows)}: {done}"]
        problems = []
        queues = {
            "create_task": list(written["tasks"]),
            "add_comment": list(written["comments"]),
            "notify": list(written["notify"]),
        }
        for number, (spec, row) in enumerate(zip(want, rows, strict=True), 1):
            ((kind, params),) = spec.items()
            if kind != row.kind or row.status != "done":
                problems.append(f"action {number}: expected {kind}, got {row.kind} [{row.status}]")
                continue
            check = getattr(self, f"_check_{kind}", None)
            if check is None:
                continue  # e-mail, rows: done is what the journal can say here
            made = queues[kind].pop(0) if kind in queues and queues[kind] else None
            problems += [f"action {number} {kind}: {p}" for p in check(params or {}, row, made)]
        return problems

    def _check_create_task(
        self, want: dict[str, Any], row: ActionRow, task: Written | None
    ) -> list[str]:
        if task is None:
            return ["no task in the account"]
        problems = []
        texts = ("title", "description")
        want = {k: self._numbered(v) if k in texts else v for k, v in want.items()}
        if "title" in want and not _same_text(want["title"], task.text):
            problems.append(f"title {task.text!r}, expected {want['title']!r}")
        description = " ".join(task.description.split())
        if "description" in want and not _same_text(
            " ".join(want["description"].split()), description
        ):
            problems.append(f"description {description!r}")
        if want.get("responsible") is not None:
            expected = self._user(want["responsible"])
            if str(task.responsible) != expected:
                problems.append(f"responsible {task.responsible}, expected {expected}")
        deadline = want.get("deadline")
        if deadline is not None and (task.deadline is None or task.deadline != _when(deadline)):
            problems.append(f"deadline {task.deadline}, expected {deadline}")
        return problems

    def _check_add_comment(
        self, want: dict[str, Any], row: ActionRow, comment: Written | None
    ) -> list[str]:
        if comment is None:
            return ["no comment in the account"]
        text = comment.text
        wanted = self._numbered(want.get("text", text))
        return [] if _same_text(wanted, text) else [f"text {text!r}"]

    def _check_notify(
        self, want: dict[str, Any], row: ActionRow, message: Delivered | None
    ) -> list[str]:
        if message is None:
            return ["no message reached the messenger"]
        problems = []
        if want.get("channel", message.channel) != message.channel:
            problems.append(f"sent to channel {message.channel}")
        if _digits(want.get("to") or message.to) != _digits(message.to):
            problems.append(f"sent to {message.to!r}, expected {want['to']!r}")
        if want.get("title", message.title) != message.title:
            problems.append(f"title {message.title!r}")
        # a signed message ends with the region's signature after the rule's text
        text = message.text.split("\n\n")[0] if want.get("signed") else message.text
        if not _same_text(self._numbered(want.get("text", text)), text):
            problems.append(f"text {message.text!r}")
        return problems

    def _numbered(self, text: str) -> str:
        """A scenario's text with its records' numbers («№ 951», «сделка 180», «лид 7») as
        the CRM numbered them."""
        return NUMBERED.sub(lambda m: m[1] + self.records.get(m[2], m[2]), text)

    def _check_update_fields(self, want: dict[str, Any], row: ActionRow, _: Any) -> list[str]:
        self._settle()  # 1C sends the order back, with the bridge's requisites, an exchange later
        record = self._fetch(row)
        wanted = {
            name: self.records[str(value)]
            if str(value) in self.found
            else (self._numbered(value) if isinstance(value, str) else value)
            for name, value in (want.get("fields") or {}).items()
        }
        return [
            f"{name} is {record.fields.get(name)!r}, expected {value!r}"
            for name, value in wanted.items()
            if not _same_value(record.fields.get(name), value)
        ]

    def _check_reassign(self, want: dict[str, Any], row: ActionRow, _: Any) -> list[str]:
        if want.get("responsible") is None:
            return []
        record, expected = self._fetch(row), self._user(want["responsible"])
        if str(record.responsible) != expected:
            return [f"responsible {record.responsible}, expected {expected}"]
        return []

    def _fetch(self, row: ActionRow) -> Any:
        connector = self.rt.connector(self.tenant)
        return connector.fetch(RecordRef(row.record_kind, row.record_id))

    def _compare_timers(self, want: list[dict[str, Any]], before: dict[str, Any]) -> list[str]:
        after = self._timers()
        if not want:
            changed = [t for i, t in after.items() if before.get(i) != t]
            return [f"expected no timer, the bridge set {changed}"] if changed else []
        problems = []
        for timer in want:
            found = [
                t
                for t in after.values()
                if t[0] == timer["rule"]
                and ("step" not in timer or t[1] == int(timer["step"]))
                and ("due" not in timer or t[2] == _when(timer["due"]))
            ]
            if not found:
                problems.append(f"expected timer {timer}, scheduled: {sorted(after.values())}")
        return problems


def _stand(crm: str) -> Stand:
    stand_class = crms.get(crm).stand_class()
    if stand_class is None:
        raise Unplayable(f"{crm} ships no sandbox")
    return stand_class()


def _home_mapping(pack: str) -> Mapping:
    """The mapping of the pack's own tenant (whose user ids the scenarios use)."""
    block = tenants()[pack]
    crm = crms.get(block["crm"])
    return mappings.load(CONFIG.parent / block["mapping"], crm.mapping_path())


def _normal(data: dict[str, Any]) -> dict[str, Any]:
    """A scenario record with the defaults bridge/scenarios.py gives it."""
    out = {"kind": "deal", "responsible": "1", "title": "", "outcome": "open", **data}
    out["id"], out["fields"] = str(out.get("id", "1")), dict(out.get("fields") or {})
    return out


def _state_after(state: dict[str, Any] | None, step: Step) -> dict[str, Any] | None:
    """The scenario's record after a step's change (as the steps say, before any rule)."""
    if step.record is not None:
        return _normal(step.record)
    if state is None or not step.change:
        return state
    change = dict(step.change)
    fields = change.pop("fields", {}) or {}
    return {**state, **change, "fields": {**state["fields"], **fields}}


def _digits(text: str | None) -> str:
    return "".join(c for c in text or "" if c.isdigit()) or str(text)


def _same_text(want: str, got: str) -> bool:
    return got.startswith(want[:-3]) if want.endswith("...") else want == got


def _same_value(got: Any, want: Any) -> bool:
    if str(got) == str(want):
        return True
    try:  # a moment: the same instant, whatever its written form
        return _when(got) == _when(want)
    except (TypeError, ValueError):
        return False


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
