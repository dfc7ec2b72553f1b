"""amoCRM account webhooks: ``POST /hooks/amocrm/<tenant>/<secret>``.

Wire format (https://www.amocrm.ru/developers/content/crm_platform/webhooks-format, reference
§1): form-encoded PHP bracket keys, ``<entity>[<action>][<n>][<field>]``, every value a string,
the legacy (API v2) entity shape, plus ``account[id]`` / ``account[subdomain]``. One POST may
carry several entities and actions: each becomes its own event, journaled and queued on its
own, and the answer lists them all.

Authenticity: amoCRM signs nothing. The secret is a path segment of the hook's URL, compared
in constant time, and ``account[id]`` must be the tenant's account (reference §1.5). The
answer must come within 2 s and be 2xx, or amoCRM retries and, after 100 invalid answers in
2 hours, disables the hook (§1.6): entities we do not handle are answered 200 and skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bridge.crms.amocrm import AmoCRM
from bridge.crms.amocrm.shapes import kind_of
from bridge.crms.receive import Incoming, Rejected, find_tenant, gate, number, read_form
from bridge.errors import ConfigError
from bridge.formdata import clip

if TYPE_CHECKING:
    from bridge.config import Tenant

bp = Blueprint("ingress_amocrm", __name__)

CRM = AmoCRM.name
# leads[<action>] -> event type; a stage move is an update (the pipeline sees the new stage)
LEAD_ACTIONS = {
    "add": "record.created",
    "update": "record.updated",
    "status": "record.updated",
    "responsible": "record.updated",
    "restore": "record.updated",
}
# task[<action>] (singular in the official example): a task is an activity on its lead; an
# update may complete it (status 1, action_close 1: the contact happened), which the pipeline
# reads from the task itself (https://www.amocrm.ru/developers/content/crm_platform/tasks-api)
TASK_ACTIONS = {"add": "activity.created", "update": "activity.updated"}
LEGACY_LEAD = "2"  # element_type of a lead in legacy bodies (reference §1.4)
STAMP_LENGTH = 40  # ids, stage ids and Unix times: a longer value is clipped where it is kept


@bp.post("/hooks/amocrm/<tenant>/<secret>")
def receive(tenant: str, secret: str) -> ResponseReturnValue:
    """Authenticate, parse, deduplicate, journal and enqueue every entity of one post."""
    try:
        items = parse(tenant, secret)
    except Rejected as error:
        return gate().reject(tenant, CRM, error)
    accepted = map(gate().accept, items)
    events = [{"entry": entry, "status": status} for entry, status in accepted]
    return jsonify(status="accepted", events=events), 200


def parse(tenant: str, secret: str) -> list[Incoming]:
    """Turn the request's form body into one :class:`Incoming` per entity, or raise
    :class:`Rejected`; the body is read only once the secret proved the caller."""
    found = _authenticate(tenant, secret)
    try:
        return _events(found, read_form())
    except Rejected as error:
        error.trusted = True  # it came with the hook's secret: the account itself sent it
        raise


def _events(found: Tenant, body: dict[str, Any]) -> list[Incoming]:
    _check_account(found, body)
    items = []
    for action, entity, key in _entities(body, "leads", (*LEAD_ACTIONS, "note")):
        items.append(_lead_event(found, action, entity, key))
    for action, entity, key in _entities(body, "task", TASK_ACTIONS):
        if _text(entity, "element_type", key) == LEGACY_LEAD:
            items.append(_task_event(found, action, entity, key))
    return items


def _authenticate(tenant: str, secret: str) -> Tenant:
    found = find_tenant(tenant, CRM, AmoCRM.title)
    try:
        expected = found.secret("webhook_secret")
    except ConfigError as exc:
        raise Rejected(503, str(exc), trusted=True) from None
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Rejected(403, "the secret in the hook's URL does not match the tenant's")
    return found


def _check_account(tenant: Tenant, body: dict[str, Any]) -> None:
    account = body.get("account") if isinstance(body.get("account"), dict) else {}
    given = number(account.get("id"), "account[id]")
    expected = str(tenant.config.connection.get("account_id"))
    if not hmac.compare_digest(given.encode(), expected.encode()):
        subdomain = _text(account, "subdomain", "account")[:63]  # a DNS label's length
        payload = {"account": {"id": given, "subdomain": subdomain}}
        raise Rejected(403, f"account[id] {given!r} is not the tenant's account", payload)


def _entities(
    body: dict[str, Any], name: str, actions: Any
) -> list[tuple[str, dict[str, Any], str]]:
    """``(action, entity, its key prefix)`` for each numbered entity of the handled actions."""
    section = body.get(name)
    if not isinstance(section, dict):
        return []
    out = []
    for action in actions:
        group = section.get(action)
        if group is None:
            continue
        if not isinstance(group, dict):
            raise Rejected(400, f"{name}[{action}] must hold numbered entities")
        for index, entity in group.items():
            key = f"{name}[{action}][{index}]"
            if not isinstance(entity, dict):
                raise Rejected(400, f"{key} must hold the entity's fields")
            out.append((action, entity, key))
    return out


def _lead_event(tenant: Tenant, action: str, entity: dict[str, Any], key: str) -> Incoming:
    if action == "note":
        return _note_event(tenant, entity, key)
    lead_id = _number(entity, "id", key)
    status = _text(entity, "status_id", key)
    pipeline = _number(entity, "pipeline_id", key) if entity.get("pipeline_id") else ""
    stamp = _text(entity, "last_modified", key) or _text(entity, "updated_at", key)
    return Incoming(
        tenant=tenant.name,
        crm=CRM,
        source=f"leads[{action}]",
        type=LEAD_ACTIONS[action],
        # a hook without pipeline_id leaves the kind to the connector (it reads the lead)
        kind=kind_of(tenant.mapping, pipeline) if pipeline else "",
        record_id=lead_id,
        dedup_key=f"amo:leads:{action}:{lead_id}:{status}:{stamp}",
        payload=_ids(entity, "leads", action),
    )


def _note_event(tenant: Tenant, entity: dict[str, Any], key: str) -> Incoming:
    # leads[note][n][note][id|element_id|...]: double-nested (reference §1.4, practice)
    note = entity.get("note")
    if not isinstance(note, dict):
        raise Rejected(400, f"missing {key}[note]")
    note_id = _number(note, "id", f"{key}[note]")
    lead_id = _number(note, "element_id", f"{key}[note]")
    return Incoming(
        tenant=tenant.name,
        crm=CRM,
        source="leads[note]",
        type="activity.created",
        kind="",
        record_id=lead_id,
        subject=note_id,
        dedup_key=f"amo:leads:note:{note_id}:{lead_id}:{_text(note, 'created_at', key)}",
        payload={"entity": "leads", "action": "note", "note_id": note_id, "lead_id": lead_id},
    )


def _task_event(tenant: Tenant, action: str, entity: dict[str, Any], key: str) -> Incoming:
    task_id = _number(entity, "id", key)
    lead_id = _number(entity, "element_id", key)
    # task hooks carry no modification time: a re-delivery repeats every field, a new change
    # differs in one, so the fields' digest tells them apart
    digest = hashlib.sha256(json.dumps(entity, sort_keys=True).encode()).hexdigest()[:12]
    return Incoming(
        tenant=tenant.name,
        crm=CRM,
        source=f"task[{action}]",
        type=TASK_ACTIONS[action],
        kind="",
        record_id=lead_id,
        subject=task_id,
        dedup_key=f"amo:task:{action}:{task_id}:{digest}",
        payload={"entity": "task", "action": action, "task_id": task_id, "lead_id": lead_id},
    )


def _number(entity: dict[str, Any], field: str, key: str) -> str:
    return number(entity.get(field), f"{key}[{field}]")


def _text(entity: dict[str, Any], field: str, key: str) -> str:
    value = entity.get(field, "")
    if isinstance(value, dict):
        raise Rejected(400, f"{key}[{field}] must be a value, not {key}[{field}][...]")
    return clip(str(value).strip(), STAMP_LENGTH)


def _ids(entity: dict[str, Any], name: str, action: str) -> dict[str, Any]:
    # what explains the event, without names, prices or custom fields (personal data)
    keep = ("id", "status_id", "old_status_id", "pipeline_id", "old_pipeline_id")
    keep += ("responsible_user_id", "modified_user_id", "last_modified")
    kept = {k: entity[k] for k in keep if isinstance(entity.get(k), str)}
    return {"entity": name, "action": action, **{k: clip(v, STAMP_LENGTH) for k, v in kept.items()}}
