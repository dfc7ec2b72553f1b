"""Carrying out planned actions: each exactly once, in as few CRM requests as possible.

An action is claimed in the journal (``pending``, under its idempotency key) before anything is
sent; an action found ``pending`` from an earlier attempt (a worker died between the CRM's answer
and the journal) is first looked for in the CRM (``find_done``). The CRM's actions of a whole
batch go to the connector at once (``execute_many``: one Bitrix24 ``batch``, one amoCRM request
per kind of write); the bridge's own (e-mail) go to their executors. The tasks of a tenant whose
CRM has none go to the connector of the tenant it names in ``tasks_in``. Outcomes are settled
in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge import actions, email, metrics, notify, tables
from bridge.crms.connector import Connector, Outcome
from bridge.errors import PermanentError, TransientError
from bridge.journal import Settled
from bridge.models import Action, Record

if TYPE_CHECKING:
    from bridge.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One planned action, with what claiming it needs to know."""

    event_id: int | None
    tenant: str
    record: Record
    action: Action
    stay: str
    replay: bool = False  # a replay runs again what failed before


Executor = Callable[["Runtime", Connector, Record, Action], dict[str, Any]]


def _send_email(rt: Runtime, conn: Connector, record: Record, action: Action) -> dict[str, Any]:
    assert isinstance(action.params, actions.SendEmail)
    sent = email.send_action(rt.mailer(conn.tenant), conn, record, action)
    return {"template": action.params.template, "message_id": sent.message_id}


def _notify(rt: Runtime, conn: Connector, record: Record, action: Action) -> dict[str, Any]:
    message = action.params
    assert isinstance(message, actions.Notify)
    # a signed message ends as the tenant's e-mails do: the signature for the client's region
    signature = (
        rt.mailer(conn.tenant).signatures.for_region(message.region) if message.signed else ""
    )
    return notify.send(conn.tenant, message, signature)


def _append_row(rt: Runtime, conn: Connector, record: Record, action: Action) -> dict[str, Any]:
    assert isinstance(action.params, actions.AppendRow)
    return tables.append(conn.tenant, action.params, action.key)


EXECUTORS: dict[str, Executor] = {
    actions.SendEmail.kind: _send_email,
    actions.Notify.kind: _notify,
    actions.AppendRow.kind: _append_row,
}
"""The bridge's own executors, by action kind (the actions whose ``by`` is ``bridge``)."""


def execute(rt: Runtime, conn: Connector, items: Sequence[Item]) -> dict[str, Outcome]:
    """Carry out planned actions once each; returns the outcome of each one acted on.

    Actions already done (or failed, unless replayed) are left out of the result; an action
    whose earlier attempt could not be looked for now waits (``retry``), nothing sent.
    """
    todo, outcomes = _still_to_do(rt, conn, _unique(items))
    for executor, mine in _by_executor(rt, conn, [i for i in todo if i.action.params.by == "crm"]):
        sending = Sending(rt.redis, executor.options.timeout)
        sending.start([i.action.key for i in mine])
        sent = executor.execute_many(_by_record(mine))
        sending.end(sent)
        outcomes.update(sent)
    for item in todo:
        if item.action.params.by != "crm":
            outcomes[item.action.key] = _run_own(rt, conn, item)
    settled = [
        Settled(key, "pending" if o.status == "retry" else o.status, o.result, o.error)
        for key, o in outcomes.items()
    ]
    rt.journal.settle_many(settled)
    kinds = {i.action.key: i.action.kind for i in items}
    for item in settled:
        metrics.ACTIONS.labels(kinds[item.key], item.status).inc()
    return outcomes


def _unique(items: Sequence[Item]) -> list[Item]:
    # two events of one record in a batch may plan the same action (same stay, same key)
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.action.key, item)
    return list(seen.values())


def _still_to_do(
    rt: Runtime, conn: Connector, items: list[Item]
) -> tuple[list[Item], dict[str, Outcome]]:
    """The items to send, and the outcomes of those that must wait: their earlier attempt's
    trace could not be looked for now."""
    claims = rt.journal.claim_actions([_claim_values(i) for i in items])
    todo, found, unsure = [], [], []
    for item in items:
        row, created = claims[item.action.key]
        if row.status == "done" or (row.status == "failed" and not item.replay):
            continue
        if already_so(item.record, item.action):
            found.append(Settled(item.action.key, "done", {"skipped": "the record holds it"}))
        elif not created and row.status == "pending":
            unsure.append((item, row.created_at))  # an earlier attempt may have acted, then died
        else:
            todo.append(item)
    waiting = landing(rt, [item.action.key for item, _ in unsure])
    unsure = [(item, since) for item, since in unsure if item.action.key not in waiting]
    traces = _find_done(rt, conn, unsure)
    for item, _ in unsure:
        trace = traces.get(item.action.key)
        if isinstance(trace, Exception):
            waiting[item.action.key] = Outcome("retry", error=str(trace))
        elif trace is not None:
            found.append(Settled(item.action.key, "done", trace))
            log.info("action %s was already done by an earlier attempt", item.action.key)
        else:
            todo.append(item)
    rt.journal.settle_many(found)
    return todo, waiting


SENDING = "bridge:sending:"
"""Redis keys of writes sent and not yet answered, each living twice the CRM's timeout."""
LANDING = (
    "an earlier attempt's write may still be landing in the CRM; it is looked for once the "
    "CRM has had its time"
)


@dataclass(frozen=True)
class Sending:
    """Writes on their way to a CRM, marked before they are sent until the CRM answers them,
    for at most twice the CRM's timeout: the time it is given to answer, and as long again to
    finish what it started when the bridge stopped waiting (a worker killed mid-request, a
    timeout while the CRM was slow). An attempt that looked for such a write's trace at once
    would not find it yet and write it a second time (bench/soak.py made 50 tasks twice so)."""

    redis: Any
    timeout: float

    def start(self, keys: Sequence[str]) -> None:
        """Mark writes about to be sent."""
        if not keys:
            return
        ms = max(int(self.timeout * 2000), 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(SENDING + key, 1, px=ms)
            pipe.execute()

    def end(self, outcomes: dict[str, Outcome]) -> None:
        """The CRM answered these or not; those it did not answer may still land."""
        answered = [k for k, o in outcomes.items() if not o.unanswered]
        if answered:
            self.redis.delete(*(SENDING + k for k in answered))


def landing(rt: Runtime, keys: Sequence[str]) -> dict[str, Outcome]:
    """The writes among ``keys`` an earlier attempt sent that may still be landing: each
    waits until the CRM has had its time, and is looked for then."""
    if not keys:
        return {}
    with rt.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.pttl(SENDING + key)
        left = pipe.execute()
    return {
        key: Outcome("retry", error=f"{LANDING} ({ms / 1000:.1f} s more)", wait=ms / 1000)
        for key, ms in zip(keys, left, strict=True)
        if ms > 0
    }


def _find_done(rt: Runtime, conn: Connector, unsure: list[tuple[Item, Any]]) -> dict[str, Any]:
    """Each unsure action's trace in its executor's CRM, looked for all at once."""
    traces: dict[str, Any] = {}
    when = {item.action.key: since for item, since in unsure}
    for executor, mine in _by_executor(rt, conn, [item for item, _ in unsure]):
        lookups = [(i.record, i.action, when[i.action.key]) for i in mine]
        traces.update(executor.find_done_many(lookups))
    return traces


def already_so(record: Record, action: Action) -> bool:
    """Does the record already hold what a write would set? Then writing is skipped: nothing
    to do, and no echo of our own write to answer again (an echo loop ends here)."""
    p = action.params
    if isinstance(p, actions.UpdateFields):
        return all(_same(record.value(name), value) for name, value in p.fields.items())
    if isinstance(p, actions.MoveStage):
        return record.in_stage(p.stage)
    if isinstance(p, actions.Reassign):
        return p.responsible is not None and _same(record.responsible, p.responsible)
    return False


def _same(held: Any, wanted: Any) -> bool:
    if held is None or wanted is None:
        return held is None and wanted is None
    if str(held) == str(wanted):
        return True
    try:
        return float(held) == float(wanted)  # amoCRM's 7 and 7.0
    except (TypeError, ValueError):
        return False


def _claim_values(item: Item) -> dict[str, Any]:
    a = item.action
    return {
        "key": a.key,
        "event_id": item.event_id,
        "tenant": item.tenant,
        "rule": a.rule,
        "kind": a.kind,
        "record_kind": a.ref.kind,
        "record_id": a.ref.id,
        "summary": a.describe(),
        "stay": item.stay,
    }


def _executor(rt: Runtime, conn: Connector, item: Item) -> Connector:
    """The connector that carries out a CRM action: the tenant's own, or for the tasks of a
    CRM that has none, that of the tenant named in ``tasks_in``."""
    return rt.executor(conn.tenant, item.record.kind, item.action.kind)


def _by_executor(
    rt: Runtime, conn: Connector, items: list[Item]
) -> list[tuple[Connector, list[Item]]]:
    grouped: dict[int, tuple[Connector, list[Item]]] = {}
    for item in items:
        executor = _executor(rt, conn, item)
        grouped.setdefault(id(executor), (executor, []))[1].append(item)
    return list(grouped.values())


def _by_record(items: list[Item]) -> list[tuple[Record, list[Action]]]:
    grouped: dict[tuple[str, str], tuple[Record, list[Action]]] = {}
    for item in items:
        record = item.record
        grouped.setdefault((record.kind, record.id), (record, []))[1].append(item.action)
    return list(grouped.values())


def _run_own(rt: Runtime, conn: Connector, item: Item) -> Outcome:
    if isinstance(item.action.params, actions.NotRendered):
        return Outcome("failed", error=item.action.params.reason)  # nothing to send
    executor = EXECUTORS.get(item.action.kind)
    if executor is None:
        return Outcome("failed", error=f"the bridge cannot execute {item.action.kind}")
    try:
        return Outcome("done", executor(rt, conn, item.record, item.action))
    except TransientError as exc:
        return Outcome("retry", error=str(exc))
    except PermanentError as exc:
        return Outcome("failed", error=str(exc))
