"""The remarka and autoparts packs, unchanged, played through amoCRM from their own scenarios.

Each scenario file of ``config/regulations/scenarios/<pack>/`` (the ones ``bridge check`` runs
through the pure engine) is replayed here end to end: a sandbox account seeded as
config/mappings/<pack>-amocrm.yaml describes it, the record's changes made in the account so
that it posts its webhooks (https://www.amocrm.ru/developers/content/crm_platform/
webhooks-format), the bridge's worker reading and writing through API v4, and the results
read back from the account: tasks (text, responsible, ``complete_till``), notes, field values,
timers scheduled in rq, the journal's decisions. ``timer.due`` steps fire the timer the bridge
scheduled, ``sweep`` steps run the tenant's sweep, both through the same connector.

Translation is by the mappings alone: a scenario speaks canonical names and the Bitrix24
user ids of config/mappings/<pack>-bitrix24.yaml; a user id becomes the amoCRM id of the same
alias, a stage the amoCRM status the mapping names (or 142/143 for won/lost), a field its
``cf_<id>``, the loss reason or the contact. The clock is the scenario's: webhooks, timers and
sweeps happen at the step's ``at``. Steps whose ``facts`` stand for history the bridge would
have gathered itself (earlier orders, e-mails sent, change counts) cannot be replayed; such
scenarios are skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

import bridge.clock
import bridge.sweeps
import bridge.worker
from bridge import mappings, runtime, timers, yamlfile
from bridge.crms.amocrm.shapes import custom_write, unix
from bridge.crms.bitrix24 import Bitrix24
from bridge.journal import ActionRow, DecisionRow, EventRow
from bridge.models import RecordRef
from bridge.scenarios import Scenario, Step, scenario_files
from tests.amocrm_env import EVENTS, AmoBridge
from tests.bitrix24_env import ROOT

PACKS = ("remarka", "autoparts")
CASES = [
    (pack, path)
    for pack in PACKS
    for path in scenario_files(ROOT / "config" / "regulations" / f"{pack}.yaml")
]
OUTCOME_STATUS = {"won": 142, "lost": 143}
HOOKS = [e for e in EVENTS if e.endswith("_lead") and e != "note_lead"]


class Unplayable(Exception):
    """A scenario (or step) that no webhook, timer or sweep of amoCRM can reproduce."""


@pytest.mark.parametrize(("pack", "path"), CASES, ids=[f"{p}/{s.stem}" for p, s in CASES])
def test_pack_scenario_runs_on_amocrm(
    pack: str,
    path: Path,
    make_amo_bridge: Callable[..., AmoBridge],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario: Scenario = yamlfile.validate(Scenario, yamlfile.load(path))
    reason = unplayable(scenario)
    if reason:
        pytest.skip(reason)
    player = Player(pack, scenario, make_amo_bridge((pack,), events=[]), monkeypatch)
    problems = player.play()
    assert not problems, f"{path}:\n" + "\n".join(problems)


def unplayable(scenario: Scenario) -> str | None:
    """Why a scenario cannot be replayed through a CRM, or None."""
    for step in scenario.steps:
        facts = dict(step.facts)
        lookups = facts.pop("lookups", {}) or {}
        if any(found for by_name in lookups.values() for found in by_name.values()):
            return "its look-ups are given as facts (earlier records with made-up ids)"
        if facts:
            return f"its facts ({', '.join(facts)}) stand for history the bridge gathers itself"
    return "per-person working hours" if scenario.staff else None


class Player:
    """Plays one scenario through an amoCRM account and the bridge; collects the problems."""

    def __init__(
        self, pack: str, scenario: Scenario, amo: AmoBridge, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.pack, self.scenario, self.amo = pack, scenario, amo
        self.sb, self.rt = amo.sandboxes[pack], amo.runtime
        self.tenant = self.rt.tenant(pack)
        self.conn = amo.connector(pack)
        self.b24 = mappings.load(
            ROOT / "config" / "mappings" / f"{pack}-bitrix24.yaml", Bitrix24.mapping_path()
        )
        self.now = scenario.steps[0].at
        self.leads: dict[str, int] = {}  # scenario record id -> amoCRM lead id
        self.state: dict[str, Any] | None = None
        runtime.install(self.rt)  # jobs find the runtime here
        monkeypatch.setattr(bridge.clock, "utcnow", lambda: self.now)
        # a scenario fires only the timer it names, in a step of its own: the workers' clock
        # stands at the epoch, and _fire makes that one timer due then
        epoch = datetime.fromtimestamp(0, UTC)
        monkeypatch.setattr(bridge.worker, "clock", SimpleNamespace(utcnow=lambda: epoch))
        self.sb.clock = lambda: self.now.timestamp()
        roles = {role: self._roles(who) for role, who in scenario.people.items()}
        monkeypatch.setattr(self.tenant.config, "roles", {**self.tenant.config.roles, **roles})
        # the rate limit has tests of its own; here it would only slow the replay down
        self.sb.rate_limit = None
        self.conn.transport.limiter = None

    def play(self) -> list[str]:
        """Every step in order; the problems found, one line each."""
        try:
            if self.scenario.previous:
                self._seed_previous(self.scenario.previous)
            self.sb.subscribe(self.amo.hook_url(self.pack), HOOKS)
            problems: list[str] = []
            for number, step in enumerate(self.scenario.steps, 1):
                problems += [f"step {number}: {p}" for p in self._step(step)]
            return problems
        except Unplayable as exc:
            pytest.skip(str(exc))

    # -- making the changes -------------------------------------------------------------

    def _seed_previous(self, data: dict[str, Any]) -> None:
        """The record as the bridge saw it last: made without hooks, then snapshotted."""
        self.state = _normal(data)
        lead_id = self.sb.add_lead(self._body(self.state))
        self.leads[self.state["id"]] = lead_id
        record = self.conn.fetch(RecordRef(self.state["kind"], str(lead_id)))
        self.rt.journal.store_snapshot(
            self.pack, record.kind, record.id, record.stage, record.to_dict(), self.now
        )

    def _step(self, step: Step) -> list[str]:
        self.now = step.at
        before = self._mark()
        if step.event in ("record.created", "record.updated"):
            self._change(step)
        elif step.event == "timer.due":
            self._fire(step.timer or "")
        elif step.event == "sweep":
            bridge.sweeps.sweep(self.rt, self.pack)
        else:
            raise Unplayable(f"event {step.event} has no amoCRM counterpart")
        self.amo.work()
        return self._compare(step, before)

    def _change(self, step: Step) -> None:
        if step.record is not None:
            self.state = _normal(step.record)
        elif self.state is not None:
            change = dict(step.change or {})
            fields = {**self.state["fields"], **change.pop("fields", {})}
            self.state = {**self.state, **change, "fields": fields}
        assert self.state is not None
        body = self._body(self.state)
        lead_id = self.leads.get(self.state["id"])
        if lead_id is None and step.event == "record.created":
            self.leads[self.state["id"]] = self.sb.add_lead(body)  # posts leads[add]
        elif lead_id is None:
            raise Unplayable("an update of a record the bridge never saw")
        else:
            self.sb.update_lead(lead_id, body)  # posts leads[update] (and leads[status])

    def _fire(self, rule: str) -> None:
        """Make the timer the bridge scheduled for ``rule`` due now (the step's work fires it)."""
        mine = [
            (due, member)
            for member, due in timers.pending(self.rt.redis)
            if timers.parse(member)[3].startswith(f"{rule}|")
        ]
        if not mine:
            raise AssertionError(f"no timer of {rule} is scheduled")
        self.rt.redis.zadd(timers.KEY, {max(mine)[1]: 0})

    # -- canonical -> amoCRM, through the mappings --------------------------------------

    def _body(self, data: dict[str, Any]) -> dict[str, Any]:
        kind = data["kind"]
        status = self._status(kind, data.get("stage"), data.get("outcome") or "open")
        body: dict[str, Any] = {
            "name": data.get("title") or "",
            "responsible_user_id": int(self._user(data.get("responsible") or "1")),
            "status_id": status,
            "pipeline_id": self._pipeline(kind, status),
        }
        if data.get("amount") is not None:
            body["price"] = int(float(data["amount"]))
        for name, value in data["fields"].items():
            self._field(kind, name, value, body)
        return body

    def _field(self, kind: str, name: str, value: Any, body: dict[str, Any]) -> None:
        km = self.tenant.mapping.kind(kind)
        code = km.fields.get(name)
        if code is None:
            raise Unplayable(f"field {name!r} has no amoCRM mapping")
        if code.startswith("cf_"):
            reverse = {v: k for k, v in km.values.get(name, {}).items()}
            field_id = int(code[3:])
            kind_of_field = self.sb.store.fields.fields[field_id]["type"]
            item = custom_write(field_id, kind_of_field, reverse.get(value, value))
            body.setdefault("custom_fields_values", []).append(item)
        elif code == "loss_reason_name":
            if body["status_id"] == OUTCOME_STATUS["lost"]:  # only a lost lead has one
                body["loss_reason_id"] = self._loss_reason(str(value))
        elif code == "contact_id":
            self.sb.add_contact(int(value), f"Клиент {value}")
            body["_embedded"] = {"contacts": [{"id": int(value), "is_main": True}]}
        elif code == "created_at":
            body["created_at"] = unix(value)
        else:
            raise Unplayable(f"field {name!r} ({code}) is not set by this player")

    def _status(self, kind: str, stage: str | None, outcome: str) -> int:
        stages = self.tenant.mapping.kind(kind).stages
        if stage in stages:
            return int(stages[stage][0])
        if outcome in OUTCOME_STATUS:
            return OUTCOME_STATUS[outcome]  # a Bitrix24 failure stage such as C1:LOSE
        raise Unplayable(f"stage {stage!r} has no amoCRM status")

    def _pipeline(self, kind: str, status: int) -> int:
        pipelines = self.sb.store.pipelines
        if status not in OUTCOME_STATUS.values():
            return next(p for p in pipelines if status in self.sb.store.statuses(p))
        declared = self.tenant.mapping.kind(kind).pipelines
        if declared:
            return int(declared[0])
        claimed = {p for k in ("lead", "deal") for p in self.tenant.mapping.kind(k).pipelines}
        return next(p for p in pipelines if str(p) not in claimed)

    def _loss_reason(self, name: str) -> int:
        for reason_id, reason in self.sb.store.loss_reasons.items():
            if reason["name"] == name:
                return reason_id
        reason_id = 4300000 + len(self.sb.store.loss_reasons)
        self.sb.add_loss_reason(reason_id, name)
        return reason_id

    def _user(self, b24_id: Any) -> str:
        """The amoCRM id of the person a Bitrix24 id of the scenario stands for."""
        alias = next((a for a, uid in self.b24.users.items() if uid == str(b24_id)), None)
        if alias is None or alias not in self.tenant.mapping.users:
            raise Unplayable(f"user {b24_id} has no alias in both mappings")
        return self.tenant.mapping.users[alias]

    def _roles(self, who: str | list[str]) -> str | list[str]:
        ids = [who] if isinstance(who, str) else who
        aliases = [a for uid in ids for a, i in self.b24.users.items() if i == str(uid)]
        return aliases[0] if isinstance(who, str) else aliases

    # -- reading the results back -------------------------------------------------------

    def _mark(self) -> dict[str, Any]:
        with self.rt.journal.session() as s:
            last_action = max(s.scalars(select(ActionRow.id)).all(), default=0)
            last_event = max(s.scalars(select(EventRow.id)).all(), default=0)
        return {"action": last_action, "event": last_event, "timers": self._timers()}

    def _timers(self) -> dict[str, tuple[str, int, datetime]]:
        out = {}
        for member, due in timers.pending(self.rt.redis):
            rule, step, _ = timers.parse(member)[3].split("|")
            out[member] = (rule, int(step), due)
        return out

    def _compare(self, step: Step, before: dict[str, Any]) -> list[str]:
        expect, problems = step.expect, []
        with self.rt.journal.session() as s:
            actions = s.scalars(select(ActionRow).where(ActionRow.id > before["action"])).all()
            events = s.scalars(select(EventRow.id).where(EventRow.id > before["event"])).all()
            decisions = s.scalars(select(DecisionRow).where(DecisionRow.event_id.in_(events))).all()
        if expect.actions is not None:
            problems += self._compare_actions(expect.actions, list(actions))
        if expect.timers is not None:
            problems += self._compare_timers(expect.timers, before["timers"])
        for rule, verdict in expect.decisions.items():
            seen = [d.verdict for d in decisions if d.rule == rule]
            sweep_quiet = step.event == "sweep" and not seen  # sweeps journal only what fired
            ok = sweep_quiet and verdict != "fired"
            ok = ok or (verdict in seen and (verdict == "fired" or "fired" not in seen))
            if not ok:
                problems.append(f"rule {rule}: expected {verdict}, the journal says {seen}")
        return problems

    def _compare_actions(self, want: list[dict[str, Any]], rows: list[ActionRow]) -> list[str]:
        if len(want) != len(rows):
            done = "; ".join(f"{r.kind} [{r.status}] {r.summary}" for r in rows) or "none"
            return [f"expected {len(want)} action(s), the bridge did {len(rows)}: {done}"]
        problems = []
        for number, (spec, row) in enumerate(zip(want, rows, strict=True), 1):
            ((kind, params),) = spec.items()
            if kind != row.kind or row.status != "done":
                problems.append(f"action {number}: expected {kind}, got {row.kind} [{row.status}]")
                continue
            check = getattr(self, f"_check_{kind}")
            problems += [f"action {number} {kind}: {p}" for p in check(params or {}, row)]
        return problems

    def _check_create_task(self, want: dict[str, Any], row: ActionRow) -> list[str]:
        task = self.sb.tasks[int(row.result["task_id"])]
        lines, problems = task["text"].split("\n"), []
        if "title" in want and not _same_text(want["title"], lines[0]):
            problems.append(f"title {lines[0]!r}, expected {want['title']!r}")
        description = " ".join(" ".join(lines[1:-1]).split())
        if "description" in want and not _same_text(
            " ".join(want["description"].split()), description
        ):
            problems.append(f"description {description!r}")
        if "responsible" in want and task["responsible_user_id"] != int(
            self._user(want["responsible"])
        ):
            problems.append(
                f"responsible {task['responsible_user_id']}, expected {want['responsible']}"
            )
        deadline = want.get("deadline")
        if deadline is not None and task["complete_till"] != int(_when(deadline).timestamp()):
            problems.append(f"complete_till {task['complete_till']}, expected {deadline}")
        return problems

    def _check_add_comment(self, want: dict[str, Any], row: ActionRow) -> list[str]:
        note = self.sb.notes[int(row.result["note_id"])]
        text = note["params"]["text"]
        return [] if _same_text(want.get("text", text), text) else [f"text {text!r}"]

    def _check_update_fields(self, want: dict[str, Any], row: ActionRow) -> list[str]:
        record = self.conn.fetch(RecordRef(row.record_kind, row.record_id))
        return [
            f"{name} is {record.fields.get(name)!r}, expected {value!r}"
            for name, value in (want.get("fields") or {}).items()
            if str(record.fields.get(name)) != str(value)
        ]

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


def _normal(data: dict[str, Any]) -> dict[str, Any]:
    """A scenario record with the defaults bridge/scenarios.py gives it."""
    out = {"kind": "deal", "responsible": "1", "title": "", "outcome": "open", **data}
    out["id"], out["fields"] = str(out.get("id", "1")), dict(out.get("fields") or {})
    return out


def _same_text(want: str, got: str) -> bool:
    return got.startswith(want[:-3]) if want.endswith("...") else want == got


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
