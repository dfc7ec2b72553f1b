"""The REST methods the sandbox answers, each with its documented params, result and errors.

A handler takes the store and a :class:`Call` and returns a :class:`Reply`, or raises
:class:`RestError`. The caller holds the store lock for the whole call, as a portal runs one
method in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.crms.bitrix24.sandbox.data import ACTIVITY_ON_REQUEST, TASK_FILTER_KEYS
from bridge.crms.bitrix24.sandbox.query import (
    Reply,
    RestError,
    matches,
    names,
    order_records,
    paginate,
    split_key,
    text,
    to_int,
    upper_snake,
)
from bridge.crms.bitrix24.sandbox.store import DEAL, LEAD, CrmKind, PortalStore


@dataclass
class Call:
    """One method call: its params and the user the webhook acts as."""

    params: dict[str, Any]
    user_id: int

    def get(self, name: str, default: Any = None) -> Any:
        """Read a top-level param case-insensitively (``id``/``ID``, ``filter``/``FILTER``)."""
        if name in self.params:
            return self.params[name]
        lowered = name.lower()
        return next((v for k, v in self.params.items() if k.lower() == lowered), default)


Handler = Callable[[PortalStore, Call], Reply]
METHODS: dict[str, Handler] = {}


def method(*method_names: str) -> Callable[[Handler], Handler]:
    """Register a handler under one or more (lower-case) method names."""

    def register(handler: Handler) -> Handler:
        for name in method_names:
            METHODS[name] = handler
        return handler

    return register


def _mapping(call: Call, name: str) -> dict[str, Any]:
    # An empty PHP array arrives as [] in JSON; anything else that is not an object is an error
    # ("Parameter 'filter' must be array."). D:api-reference/crm/deals/crm-deal-list.md
    value = call.get(name)
    if value is None or value == "" or value == []:
        return {}
    if not isinstance(value, dict):
        raise RestError(400, "", f"Parameter '{name}' must be array.")
    return value


def _entity_id(call: Call) -> int:
    entity_id = to_int(call.get("id"))
    if entity_id is None or entity_id <= 0:
        raise RestError(400, "", "ID is not defined or invalid")
    return entity_id


def _fields(call: Call) -> dict[str, Any]:
    value = call.get("fields")
    if not isinstance(value, dict):
        raise RestError(400, "", "Parameter 'fields' must be array")
    return value


# --- crm.deal.* and crm.lead.* -----------------------------------------------------------------


def _crm_get(store: PortalStore, call: Call, kind: CrmKind) -> Reply:
    record = store.table(kind).get(_entity_id(call))
    if record is None:
        raise RestError(400, "", "Not found")
    return Reply(store.render_crm(kind, record))


def _crm_list(store: PortalStore, call: Call, kind: CrmKind) -> Reply:
    flt, order = _mapping(call, "filter"), _mapping(call, "order")
    key = (kind.name, repr(flt), repr(order), store.revision, len(store.table(kind)))
    ordered = store.list_cache.get(key)
    if ordered is None:
        records = [r for r in store.table(kind).values() if matches(r, flt, str)]
        ordered = order_records(records, order, [("ID", "ASC")])
        if len(store.list_cache) > 64:
            store.list_cache.clear()
        store.list_cache[key] = ordered
    page = paginate(ordered, call.get("start"))
    page.result = [store.select_crm(kind, r, names(call.get("select"))) for r in page.result]
    return page


def _crm_update(store: PortalStore, call: Call, kind: CrmKind) -> Reply:
    entity_id = _entity_id(call)
    fields = _fields(call)
    _mapping(call, "params")
    if entity_id not in store.table(kind):
        raise RestError(400, "", "Not found")
    store.update_crm(kind, entity_id, fields, by_user=call.user_id, trusted=False)
    return Reply(True)


def _crm_add(store: PortalStore, call: Call, kind: CrmKind) -> Reply:
    fields = _fields(call)
    _mapping(call, "params")
    return Reply(store.add_crm(kind, fields, by_user=call.user_id, trusted=False))


# D:api-reference/crm/deals/crm-deal-get.md
@method("crm.deal.get")
def deal_get(store: PortalStore, call: Call) -> Reply:
    """crm.deal.get: One deal by id."""
    return _crm_get(store, call, DEAL)


# D:api-reference/crm/deals/crm-deal-list.md
@method("crm.deal.list")
def deal_list(store: PortalStore, call: Call) -> Reply:
    """crm.deal.list: A page of deals: filter, select, order, start."""
    return _crm_list(store, call, DEAL)


# D:api-reference/crm/deals/crm-deal-add.md
@method("crm.deal.add")
def deal_add(store: PortalStore, call: Call) -> Reply:
    """crm.deal.add: Create a deal; the result is its id."""
    return _crm_add(store, call, DEAL)


# D:api-reference/crm/deals/crm-deal-update.md
@method("crm.deal.update")
def deal_update(store: PortalStore, call: Call) -> Reply:
    """crm.deal.update: Change a deal; unknown fields are ignored."""
    return _crm_update(store, call, DEAL)


# D:api-reference/crm/deals/crm-deal-fields.md
@method("crm.deal.fields")
def deal_fields(store: PortalStore, call: Call) -> Reply:
    """crm.deal.fields: Deal field descriptions, user fields included."""
    return Reply(store.describe_fields(DEAL))


# D:api-reference/crm/leads/crm-lead-get.md
@method("crm.lead.get")
def lead_get(store: PortalStore, call: Call) -> Reply:
    """crm.lead.get: One lead by id."""
    return _crm_get(store, call, LEAD)


# D:api-reference/crm/leads/crm-lead-list.md
@method("crm.lead.list")
def lead_list(store: PortalStore, call: Call) -> Reply:
    """crm.lead.list: A page of leads."""
    return _crm_list(store, call, LEAD)


# D:api-reference/crm/leads/crm-lead-add.md
@method("crm.lead.add")
def lead_add(store: PortalStore, call: Call) -> Reply:
    """crm.lead.add: Create a lead; the result is its id."""
    return _crm_add(store, call, LEAD)


# D:api-reference/crm/leads/crm-lead-update.md
@method("crm.lead.update")
def lead_update(store: PortalStore, call: Call) -> Reply:
    """crm.lead.update: Change a lead."""
    return _crm_update(store, call, LEAD)


# D:api-reference/crm/leads/crm-lead-fields.md
@method("crm.lead.fields")
def lead_fields(store: PortalStore, call: Call) -> Reply:
    """crm.lead.fields: Lead field descriptions."""
    return Reply(store.describe_fields(LEAD))


# --- crm.status.* --------------------------------------------------------------------------------


# D:api-reference/crm/status/crm-status-list.md
@method("crm.status.list")
def status_list(store: PortalStore, call: Call) -> Reply:
    """crm.status.list: Directory items (stages) with SEMANTICS and EXTRA."""
    flt, order = _mapping(call, "filter"), _mapping(call, "order")
    items = [dict(s, EXTRA=dict(s["EXTRA"])) for s in store.statuses if matches(s, flt, str)]
    items = order_records(items, order, [])
    return Reply(items, total=len(items))


# D:api-reference/crm/status/crm-status-entity-types.md
@method("crm.status.entity.types")
def status_entity_types(store: PortalStore, call: Call) -> Reply:
    """crm.status.entity.types: Directory types with their SEMANTIC_INFO."""
    return Reply(store.entity_types())


# --- crm.stagehistory.list ----------------------------------------------------------------------


# D:api-reference/crm/crm-stage-history-list.md (the older page: rest_help/crm/stagehistory.php)
@method("crm.stagehistory.list")
def stage_history_list(store: PortalStore, call: Call) -> Reply:
    """crm.stagehistory.list: moves of leads (entityTypeId 1) or deals (2) between stages.

    The result is ``{"items": [...]}`` with ``total`` and ``next`` beside it; the filter takes
    exact values, arrays and the =, !=, <, >, >=, <= modifiers (no LIKE).
    """
    entity = to_int(call.get("entityTypeId"))
    if entity not in store.stage_history:
        raise RestError(400, "", "Entity type is not supported")
    flt, order = _mapping(call, "filter"), _mapping(call, "order")
    items = [dict(i) for i in store.stage_history[entity] if matches(i, flt, str)]
    page = paginate(order_records(items, order, [("ID", "ASC")]), call.get("start"))
    select = names(call.get("select"))
    if select and "*" not in select:
        page.result = [{k: v for k, v in i.items() if k in select} for i in page.result]
    page.result = {"items": page.result}
    return page


# --- crm.timeline.comment.* ----------------------------------------------------------------------


# D:api-reference/crm/timeline/comments/crm-timeline-comment-add.md
@method("crm.timeline.comment.add")
def comment_add(store: PortalStore, call: Call) -> Reply:
    """crm.timeline.comment.add: Add a timeline comment; the result is its id."""
    # "Starting from crm version 23.100.0, the method only accepts parameters with the key
    # `fields` in lowercase", so no case-insensitive lookup here.
    fields = call.params.get("fields")
    if not isinstance(fields, dict):
        raise RestError(400, "100", "Required fields are not provided")
    entity_id, entity_type = to_int(fields.get("ENTITY_ID")), text(fields.get("ENTITY_TYPE"))
    if entity_id is None or not entity_type:
        raise RestError(400, "100", "Required fields are not provided")
    if not text(fields.get("COMMENT")).strip():
        raise RestError(400, "INVALID_ARG_VALUE", "Empty comment")
    owners = {"deal": store.deals, "lead": store.leads}.get(entity_type.lower(), {})
    if entity_id not in owners:
        raise RestError(400, "OWNER_NOT_FOUND", "Owner of the item not found")
    comment_id = store.add_comment(
        entity_type.lower(), entity_id, text(fields["COMMENT"]), by_user=call.user_id
    )
    return Reply(comment_id)


# D:api-reference/crm/timeline/comments/crm-timeline-comment-list.md
@method("crm.timeline.comment.list")
def comment_list(store: PortalStore, call: Call) -> Reply:
    """crm.timeline.comment.list: A page of timeline comments."""
    flt, order = _mapping(call, "filter"), _mapping(call, "order")
    records = [c for c in store.comments.values() if matches(c, flt, str)]
    page = paginate(order_records(records, order, [("ID", "ASC")]), call.get("start"))
    select = names(call.get("select"))
    page.result = [{k: v for k, v in c.items() if not select or k in select} for c in page.result]
    return page


# --- tasks.task.* --------------------------------------------------------------------------------


# D:api-reference/tasks/tasks-task-add.md
@method("tasks.task.add")
def task_add(store: PortalStore, call: Call) -> Reply:
    """tasks.task.add: Create a task from UPPER_CASE fields; the result is the camelCase task."""
    fields = call.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise RestError(400, "100", "Could not find value for parameter {fields} (internal error)")
    task = store.add_task(fields, by_user=call.user_id)
    return Reply({"task": store.render_task(task, [])})


# D:api-reference/tasks/tasks-task-get.md
@method("tasks.task.get")
def task_get(store: PortalStore, call: Call) -> Reply:
    """tasks.task.get: One task, or [] when there is none."""
    raw = call.get("taskId")
    if raw is None:
        raise RestError(
            400,
            "100",
            "CTaskItem All parameters in the constructor must have real class type"
            " (internal error)",
        )
    task_id = to_int(raw)
    if task_id is None:
        raise RestError(400, "0", "wrong task id")
    task = store.tasks.get(task_id)
    # "Returns an empty array "result":[] if the task does not exist".
    return Reply({"task": store.render_task(task, names(call.get("select")))} if task else [])


def _task_candidates(store: PortalStore, flt: dict[str, Any]) -> Any:
    bound = flt.get("=UF_CRM_TASK")
    if isinstance(bound, str):
        return [store.tasks[i] for i in store.tasks_bound.get(bound, [])]
    return store.tasks.values()


def _task_filter_key(key: str) -> tuple[str, str] | None:
    op, name = split_key(key)
    if name.upper() not in TASK_FILTER_KEYS:
        return None
    return op, TASK_FILTER_KEYS[name.upper()]


# D:api-reference/tasks/tasks-task-list.md
@method("tasks.task.list")
def task_list(store: PortalStore, call: Call) -> Reply:
    """tasks.task.list: A page of tasks under result.tasks."""
    flt: dict[str, Any] = {}
    for key, value in _mapping(call, "filter").items():
        parsed = _task_filter_key(str(key))
        if parsed is None:
            continue  # not a task filter field: ignored
        op, field = parsed
        # TITLE "can search by pattern [%_]"
        if field == "TITLE" and op == "=" and "%" in text(value):
            op = "=%"
        flt[op + field] = value
    records = [t for t in _task_candidates(store, flt) if matches(t, flt, str)]
    order = {
        TASK_FILTER_KEYS.get(upper_snake(str(k)), upper_snake(str(k))): v
        for k, v in _mapping(call, "order").items()
    }
    records = order_records(records, order, [("ID", "DESC")])
    page = paginate(records, call.get("start"))
    select = names(call.get("select"))
    page.result = {"tasks": [store.render_task(t, select) for t in page.result]}
    return page


# --- user.get ------------------------------------------------------------------------------------

_USER_RESERVED = {"sort", "order", "filter", "admin_mode", "select", "image_resize", "start"}


# D:api-reference/user/user-get.md
@method("user.get")
def user_get(store: PortalStore, call: Call) -> Reply:
    """user.get: Users; a list even for one id."""
    flt = dict(_mapping(call, "filter"))
    # Older callers put filter fields at the top level (`{"ID": 61}`).
    flt |= {k: v for k, v in call.params.items() if k.lower() not in _USER_RESERVED}
    users = [u for u in store.users.values() if matches(u, flt, str)]
    sort, direction = call.get("sort"), call.get("order") or "ASC"
    keys = [(str(sort), str(direction))] if isinstance(sort, str) and sort else [("ID", "ASC")]
    page = paginate(order_records(users, None, keys), call.get("start"))
    select = names(call.get("select"))
    if select and "*" not in select:
        page.result = [{k: v for k, v in u.items() if k in select} for u in page.result]
    page.result = [dict(u) for u in page.result]
    return page


# --- crm.contact.* -------------------------------------------------------------------------------


# D:api-reference/crm/contacts/crm-contact-get.md
@method("crm.contact.get")
def contact_get(store: PortalStore, call: Call) -> Reply:
    """crm.contact.get: One contact by id, its PHONE and EMAIL multifields included."""
    contact = store.contacts.get(_entity_id(call))
    if contact is None:
        raise RestError(400, "", "Not found")
    return Reply(dict(contact))


# --- crm.activity.* ------------------------------------------------------------------------------


# D:api-reference/crm/timeline/activities/activity-base/crm-activity-get.md
@method("crm.activity.get")
def activity_get(store: PortalStore, call: Call) -> Reply:
    """crm.activity.get: One activity by id."""
    activity = store.activities.get(_entity_id(call))
    if activity is None:
        raise RestError(400, "", "Activity is not found")
    return Reply({k: v for k, v in activity.items() if k not in ACTIVITY_ON_REQUEST})


# D:api-reference/crm/timeline/activities/activity-base/crm-activity-list.md
@method("crm.activity.list")
def activity_list(store: PortalStore, call: Call) -> Reply:
    """crm.activity.list: A page of activities."""
    flt, order = _mapping(call, "filter"), _mapping(call, "order")
    records = [a for a in store.activities.values() if matches(a, flt, str)]
    # "By default, it is sorted by increasing the Start Date field (START_TIME)".
    page = paginate(order_records(records, order, [("START_TIME", "ASC")]), call.get("start"))
    page.result = [_select_activity(a, names(call.get("select"))) for a in page.result]
    return page


def _select_activity(activity: Mapping[str, Any], select: list[str]) -> dict[str, Any]:
    if not select or "*" in select:
        keep = [k for k in activity if k not in ACTIVITY_ON_REQUEST or k in select]
    else:
        keep = [k for k in activity if k in select or k == "ID"]
    return {k: activity[k] for k in keep}
