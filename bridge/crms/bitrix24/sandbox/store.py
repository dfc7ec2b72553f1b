"""State of the Bitrix24 sandbox: users, pipelines, deals, leads, tasks, comments, activities.

All mutation goes through :class:`PortalStore` under one re-entrant lock, and every change that a
real portal would announce calls ``emit(event, id)`` so the sandbox can post the outgoing webhook.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.crms.bitrix24.sandbox.contacts import Contacts
from bridge.crms.bitrix24.sandbox.data import (
    DEAL_FIELDS,
    DEFAULT_DEAL_STAGES,
    DEFAULT_LEAD_STATUSES,
    EXTRA_SEMANTICS,
    LEAD_FIELDS,
    PLAIN_ENTITY_TYPES,
    STAGE_COLORS,
    UF_SETTINGS,
    FieldSpec,
    StatusRow,
)
from bridge.crms.bitrix24.sandbox.query import PORTAL_TZ, normalize, to_int
from bridge.crms.bitrix24.sandbox.work import WorkItems

Emit = Callable[[str, int], None]

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM", "LINK")
_UF_NAME = re.compile(r"^UF_CRM_[A-Z0-9_]+$")
_CATEGORY_PREFIX = re.compile(r"^C(\d+):")
# Amounts come back with two decimals ("1000000.00"). D:api-reference/crm/deals/crm-deal-get.md
_MONEY_FIELDS = ("OPPORTUNITY", "TAX_VALUE")


@dataclass(frozen=True)
class CrmKind:
    """What differs between deals and leads."""

    name: str
    fields: tuple[FieldSpec, ...]
    stage_field: str
    semantic_field: str
    add_event: str
    update_event: str


DEAL = CrmKind(
    "deal", DEAL_FIELDS, "STAGE_ID", "STAGE_SEMANTIC_ID", "ONCRMDEALADD", "ONCRMDEALUPDATE"
)
LEAD = CrmKind(
    "lead", LEAD_FIELDS, "STATUS_ID", "STATUS_SEMANTIC_ID", "ONCRMLEADADD", "ONCRMLEADUPDATE"
)


def stage_entity(category_id: int) -> str:
    """``DEAL_STAGE`` for the general pipeline, ``DEAL_STAGE_<n>`` for the others."""
    return "DEAL_STAGE" if category_id == 0 else f"DEAL_STAGE_{category_id}"


def _status_item(entity: str, category: str | None, row: StatusRow) -> dict[str, Any]:
    # Shape of D:api-reference/crm/status/crm-status-list.md
    sid, status_id, name, name_init, sort, system, color, semantics, extra = row
    return {
        "ID": sid,
        "ENTITY_ID": entity,
        "STATUS_ID": status_id,
        "NAME": name,
        "NAME_INIT": name_init,
        "SORT": sort,
        "SYSTEM": system,
        "CATEGORY_ID": category,
        "COLOR": color,
        "SEMANTICS": semantics,
        "EXTRA": {"SEMANTICS": extra, "COLOR": color},
    }


def _money(value: Any) -> Any:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return value


class PortalStore(WorkItems, Contacts):
    """The portal's data; every public method takes the lock."""

    def __init__(self, *, domain: str, emit: Emit) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(PORTAL_TZ)
        self.currency = "RUB" if domain.endswith(".ru") else "USD"
        self.users: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.pipelines: dict[int, str] = {0: "General"}
        self.userfields: dict[str, dict[str, dict[str, Any]]] = {"deal": {}, "lead": {}}
        self.deals: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        # task ids by bound CRM entity ("D_12"): a lookup by binding costs O(its tasks), not
        # O(the portal's), so a soak over 60,000 deals measures the bridge, not the sandbox
        self.tasks_bound: dict[str, list[int]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.activities: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        # crm.stagehistory.list's items, per entityTypeId (1 lead, 2 deal)
        self.stage_history: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        kinds = ("deal", "lead", "task", "comment", "activity", "multifield", "enum", "history")
        kinds += ("contact",)
        self._seq = {kind: itertools.count(1) for kind in kinds}
        self._status_seq = itertools.count(201, 2)
        self._emit = emit
        # the ordered matches of a list call, kept while no deal or lead changes: a page of a
        # large portal then costs a slice, not a scan (get_all asks 50 pages in one batch)
        self.revision = 0
        self.list_cache: dict[Any, list[dict[str, Any]]] = {}
        self.statuses += [_status_item("DEAL_STAGE", None, row) for row in DEFAULT_DEAL_STAGES]
        self.statuses += [_status_item("STATUS", None, row) for row in DEFAULT_LEAD_STATUSES]

    def stamp(self, moment: datetime | None = None) -> str:
        """Format a datetime as the API does: ``2024-08-30T14:29:00+03:00``."""
        moment = moment or self.clock()
        return moment.astimezone(PORTAL_TZ).isoformat(timespec="seconds")

    # --- users -------------------------------------------------------------------------------

    def add_user(self, user_id: int, name: str, last_name: str, email: str, active: bool) -> None:
        """Add or replace a user, shaped like D:api-reference/user/user-get.md items."""
        now = self.stamp()
        with self.lock:
            self.users[user_id] = {
                **{"ID": str(user_id), "ACTIVE": active, "NAME": name, "LAST_NAME": last_name},
                **{"SECOND_NAME": "", "EMAIL": email, "LAST_LOGIN": now, "DATE_REGISTER": now},
                **{"TIME_ZONE": "", "IS_ONLINE": "N", "TIMESTAMP_X": {}, "LAST_ACTIVITY_DATE": {}},
                **{"PERSONAL_GENDER": "", "PERSONAL_BIRTHDAY": "", "WORK_POSITION": ""},
                **{"UF_EMPLOYMENT_DATE": "", "UF_DEPARTMENT": [1], "USER_TYPE": "employee"},
            }

    # --- statuses and pipelines ------------------------------------------------------------

    def add_pipeline(self, category_id: int, name: str, stages: list[tuple[str, str, str]]) -> None:
        """Create or replace a deal pipeline and its stages (see Bitrix24Sandbox.add_pipeline)."""
        entity = stage_entity(category_id)
        prefix = f"C{category_id}:" if category_id else ""
        with self.lock:
            self.statuses = [s for s in self.statuses if s["ENTITY_ID"] != entity]
            self.pipelines[category_id] = name
            seen_failure = False
            for index, (raw_id, stage_name, semantics) in enumerate(stages):
                if semantics not in EXTRA_SEMANTICS:
                    raise ValueError(f"stage semantics must be P, S or F, not {semantics!r}")
                # The first stage, the success stage and the first failure stage are the
                # pipeline's system stages, as NEW/WON/LOSE are in the general one.
                system = index == 0 or semantics == "S" or (semantics == "F" and not seen_failure)
                seen_failure = seen_failure or semantics == "F"
                palette = STAGE_COLORS[semantics]
                row: StatusRow = (
                    str(next(self._status_seq)),
                    raw_id if raw_id.startswith(prefix) else prefix + raw_id,
                    *(stage_name, stage_name if system else "", str((index + 1) * 10)),
                    *("Y" if system else "N", palette[index % len(palette)]),
                    *(None if semantics == "P" else semantics, EXTRA_SEMANTICS[semantics]),
                )
                category = str(category_id) if category_id else None
                self.statuses.append(_status_item(entity, category, row))

    def add_lead_status(self, status_id: str, name: str) -> None:
        """An in-progress lead status before the final ones, unless the portal has it."""
        with self.lock:
            known = self.stages_of("STATUS")
            if any(s["STATUS_ID"] == status_id for s in known):
                return
            sort = max(int(s["SORT"]) for s in known if not s["SEMANTICS"]) + 1
            row: StatusRow = (
                str(next(self._status_seq)),
                *(status_id, name, "", str(sort), "N", STAGE_COLORS["P"][0], None, "process"),
            )
            self.statuses.append(_status_item("STATUS", None, row))

    def stages_of(self, entity: str) -> list[dict[str, Any]]:
        """Statuses of one directory (``DEAL_STAGE_1``, ``STATUS``) in SORT order."""
        items = [s for s in self.statuses if s["ENTITY_ID"] == entity]
        return sorted(items, key=lambda s: int(s["SORT"]))

    def entity_types(self) -> list[dict[str, Any]]:
        """Build crm.status.entity.types. D:api-reference/crm/status/crm-status-entity-types.md"""
        with self.lock:
            lead = {
                "ID": "STATUS",
                "NAME": "Lead stages",
                "SEMANTIC_INFO": self._semantic("STATUS"),
            }
            lead["ENTITY_TYPE_ID"] = 1
            plain = [{"ID": i, "NAME": n} for i, n in PLAIN_ENTITY_TYPES]
            # The doc lists custom pipelines before the general one.
            order = sorted(self.pipelines, key=lambda c: (c == 0, c))
            return [lead, *plain[:6], *(self._pipeline_type(c) for c in order), *plain[6:]]

    def _pipeline_type(self, category_id: int) -> dict[str, Any]:
        entity = stage_entity(category_id)
        item: dict[str, Any] = {"ID": entity, "NAME": f"{self.pipelines[category_id]} deal stages"}
        if category_id:
            item["PARENT_ID"] = "DEAL_STAGE"
        item["SEMANTIC_INFO"] = self._semantic(entity)
        if category_id:
            item["PREFIX"] = f"C{category_id}"
        item["FIELD_ATTRIBUTE_SCOPE"] = f"category_{category_id}" if category_id else ""
        item["ENTITY_TYPE_ID"] = 2
        # The doc's sample gives "1" for a custom pipeline and 0 for the general one.
        item["CATEGORY_ID"] = str(category_id) if category_id else 0
        return item

    def _semantic(self, entity: str) -> dict[str, Any]:
        stages = self.stages_of(entity)
        pick = {
            s: next((x["STATUS_ID"] for x in stages if x["SEMANTICS"] == s), None) for s in "SF"
        }
        return {
            "START_FIELD": stages[0]["STATUS_ID"] if stages else None,
            "FINAL_SUCCESS_FIELD": pick["S"],
            "FINAL_UNSUCCESS_FIELD": pick["F"],
            "FINAL_SORT": 0,
        }

    # --- deals and leads ---------------------------------------------------------------------

    def table(self, kind: CrmKind) -> dict[int, dict[str, Any]]:
        """The deals or the leads."""
        return self.deals if kind is DEAL else self.leads

    def add_userfield(
        self, entity: str, name: str, type_: str, label: str, items: Iterable[str] | None
    ) -> list[dict[str, str]]:
        """Register a UF_CRM_* field; returns the enumeration items with their IDs."""
        if entity not in self.userfields:
            raise ValueError(f"entity must be 'deal' or 'lead', not {entity!r}")
        # A field name is at most 50 characters including UF_CRM_ and uses A-Z0-9_.
        # D:api-reference/crm/companies/userfields/crm-company-userfield-add.md
        if not _UF_NAME.match(name) or len(name) > 50:
            raise ValueError(f"bad user field name {name!r}")
        with self.lock:
            values = [{"ID": str(next(self._seq["enum"])), "VALUE": v} for v in items or ()]
            self.userfields[entity][name] = {"type": type_, "label": label, "items": values}
            return copy.deepcopy(values)

    def describe_fields(self, kind: CrmKind) -> dict[str, Any]:
        """crm.deal.fields / crm.lead.fields. D:api-reference/crm/deals/crm-deal-fields.md"""
        out: dict[str, Any] = {}
        for name, ftype, title, flags, *more in kind.fields:
            extra = more[0] if more else {}
            entry: dict[str, Any] = {"type": ftype, "isRequired": "q" in flags}
            entry |= {"isReadOnly": "r" in flags, "isImmutable": "i" in flags}
            entry |= {"isMultiple": "m" in flags, "isDynamic": False}
            entry |= {k: v for k, v in extra.items() if k != "settings"}
            entry["title"] = title
            if "settings" in extra:
                entry["settings"] = extra["settings"]
            out[name] = entry
        with self.lock:
            for name, uf in self.userfields[kind.name].items():
                out[name] = self._describe_uf(name, uf)
        return out

    @staticmethod
    def _describe_uf(name: str, uf: dict[str, Any]) -> dict[str, Any]:
        # User fields: isDynamic true, title is the code, the label goes to *Label
        # (D:api-reference/crm/companies/crm-company-fields.md); enumeration items as in
        # D:api-reference/crm/_include/user-fields-for-examples-cut.md
        entry: dict[str, Any] = {"type": uf["type"], "isRequired": False, "isReadOnly": False}
        entry |= {"isImmutable": False, "isMultiple": False, "isDynamic": True}
        if uf["type"] == "enumeration":
            entry["items"] = copy.deepcopy(uf["items"])
        entry |= {"title": name, "listLabel": uf["label"], "formLabel": uf["label"]}
        entry["filterLabel"] = uf["label"]
        if uf["type"] in UF_SETTINGS:
            entry["settings"] = copy.deepcopy(UF_SETTINGS[uf["type"]])
        return entry

    def render_crm(self, kind: CrmKind, record: Mapping[str, Any]) -> dict[str, Any]:
        """A full record as crm.*.get returns it, registered UFs included."""
        out = copy.deepcopy(dict(record))
        for name in self.userfields[kind.name]:
            out.setdefault(name, None)
        return out

    def select_crm(self, kind: CrmKind, record: Mapping[str, Any], select: list[str]) -> dict:
        """Apply a crm.*.list ``select``; default ``*`` + ``UF_*`` (multiple fields excluded)."""
        full = self.render_crm(kind, record)
        wanted = select or ["*", "UF_*"]
        single = {spec[0] for spec in kind.fields if "m" not in spec[3]}
        out: dict[str, Any] = {}
        for name in wanted:
            if name == "*":
                out |= {k: v for k, v in full.items() if k in single}
            elif name == "UF_*":
                out |= {k: v for k, v in full.items() if k.startswith("UF_")}
            elif name in full:
                out[name] = full[name]
        return out

    def add_crm(
        self, kind: CrmKind, fields: Mapping[str, Any], *, by_user: int, trusted: bool
    ) -> int:
        """Create a deal or lead; ``trusted`` (seeding) may also set read-only fields."""
        with self.lock:
            new_id = next(self._seq[kind.name])
            now = self.stamp()
            record = self._defaults(kind, new_id, now, by_user)
            values = self._accepted(kind, fields, trusted=trusted, adding=True)
            stage = values.pop(kind.stage_field, None)  # placed below, with its semantics
            self._apply(record, values)
            self._place(kind, record, stage, by_user, fresh=True, created=True)
            self._finish(kind, record, values if trusted else {})
            self.table(kind)[new_id] = record
            self.revision += 1
            self._emit(kind.add_event, new_id)
            return new_id

    def update_crm(
        self,
        kind: CrmKind,
        entity_id: int,
        fields: Mapping[str, Any],
        *,
        by_user: int,
        trusted: bool,
    ) -> None:
        """Change a deal or lead; unknown and read-only fields are ignored unless ``trusted``.

        Raises:
            KeyError: no such record.
        """
        with self.lock:
            record = self.table(kind)[entity_id]
            values = self._accepted(kind, fields, trusted=trusted, adding=False)
            stage = values.pop(kind.stage_field, None)  # placed below, with its semantics
            category = record.get("CATEGORY_ID")
            self._apply(record, values)
            # Only seeding can move a deal to another pipeline (REST needs crm.item.update).
            moved = record.get("CATEGORY_ID") != category
            self._place(kind, record, stage, by_user, fresh=moved)
            record["DATE_MODIFY"], record["MODIFY_BY_ID"] = self.stamp(), str(by_user)
            self._finish(kind, record, values if trusted else {})
            self.revision += 1
            self._emit(kind.update_event, entity_id)

    def _accepted(
        self, kind: CrmKind, fields: Mapping[str, Any], *, trusted: bool, adding: bool
    ) -> dict[str, Any]:
        # "An incorrect field in `fields` will be ignored."
        # D:api-reference/crm/deals/crm-deal-update.md
        writable = {
            name
            for name, _type, _title, flags, *_ in kind.fields
            if "r" not in flags and (adding or "i" not in flags) and "m" not in flags
        }
        writable |= set(MULTIFIELDS) if kind is LEAD else set()
        writable |= set(self.userfields[kind.name])
        out = {str(k): normalize(v) for k, v in fields.items() if trusted or str(k) in writable}
        out.pop("ID", None)
        return {k: _money(v) if k in _MONEY_FIELDS else v for k, v in out.items()}

    def _apply(self, record: dict[str, Any], values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if key in MULTIFIELDS:
                self._merge_multifield(record, key, value)
            else:
                record[key] = value

    def _merge_multifield(self, record: dict[str, Any], key: str, items: Any) -> None:
        # New values are appended; an item with an ID changes that value, or drops it when its
        # VALUE is empty. Shape: D:api-reference/crm/data-types.md#crm_multifield
        current = list(record.get(key) or [])
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            known = next((c for c in current if c["ID"] == item.get("ID")), None)
            if known is None and item.get("VALUE"):
                new_id = str(next(self._seq["multifield"]))
                vtype = item.get("VALUE_TYPE") or "WORK"
                current.append({"ID": new_id, "VALUE_TYPE": vtype, "VALUE": item["VALUE"]})
                current[-1]["TYPE_ID"] = key
            elif known is not None and item.get("VALUE"):
                known.update(
                    VALUE=item["VALUE"], VALUE_TYPE=item.get("VALUE_TYPE", known["VALUE_TYPE"])
                )
            elif known is not None:
                current.remove(known)
        if current:
            record[key] = current
        else:
            record.pop(key, None)

    def _place(
        self,
        kind: CrmKind,
        record: dict[str, Any],
        stage: Any,
        by_user: int,
        *,
        fresh: bool,
        created: bool = False,
    ) -> None:
        """Put the record on a stage; ``fresh`` (new record, new pipeline) picks a valid one."""
        if kind is DEAL and fresh:
            category = to_int(record.get("CATEGORY_ID"))
            if category is None or category == 0:
                found = _CATEGORY_PREFIX.match(str(stage or ""))
                category = int(found.group(1)) if found else 0
            record["CATEGORY_ID"] = str(category if category in self.pipelines else 0)
        entity = stage_entity(int(record["CATEGORY_ID"])) if kind is DEAL else "STATUS"
        stages = self.stages_of(entity)
        status = next((s for s in stages if s["STATUS_ID"] == stage), None)
        if status is None and fresh:
            status = stages[0]
        # A stage of another pipeline (or a typo) is an incorrect field: ignored on update.
        if status is None or (not fresh and record[kind.stage_field] == status["STATUS_ID"]):
            return
        semantic = status["SEMANTICS"] or "P"
        record[kind.stage_field], record[kind.semantic_field] = status["STATUS_ID"], semantic
        record["MOVED_TIME"], record["MOVED_BY_ID"] = self.stamp(), str(by_user)
        if kind is DEAL:
            record["CLOSED"] = "N" if semantic == "P" else "Y"
            record["IS_NEW"] = "Y" if status is stages[0] else "N"
        else:
            record["DATE_CLOSED"] = "" if semantic == "P" else self.stamp()
        self._remember_stage(kind, record, 1 if created else 2 if semantic == "P" else 3)

    def _remember_stage(self, kind: CrmKind, record: dict[str, Any], type_id: int) -> None:
        """An item of crm.stagehistory.list (D:api-reference/crm/crm-stage-history-list.md):
        TYPE_ID 1 created, 2 moved to an intermediate stage, 3 moved to a final one; deals
        carry CATEGORY_ID, STAGE_SEMANTIC_ID, STAGE_ID, leads STATUS_SEMANTIC_ID, STATUS_ID."""
        item: dict[str, Any] = {"ID": next(self._seq["history"]), "TYPE_ID": type_id}
        item |= {"OWNER_ID": int(record["ID"]), "CREATED_TIME": self.stamp()}
        if kind is DEAL:
            item["CATEGORY_ID"] = int(record["CATEGORY_ID"])
        item |= {kind.semantic_field: record[kind.semantic_field]}
        item |= {kind.stage_field: record[kind.stage_field]}
        self.stage_history[1 if kind is LEAD else 2].append(item)

    def _finish(self, kind: CrmKind, record: dict[str, Any], overrides: Mapping[str, Any]) -> None:
        # Seeding may backdate DATE_CREATE, MOVED_TIME... after the stage logic has run; the
        # stage itself and its semantics stay derived.
        derived = (kind.stage_field, kind.semantic_field, "CATEGORY_ID", *MULTIFIELDS)
        record.update({k: v for k, v in overrides.items() if k not in derived})
        if kind is LEAD:
            record["HAS_PHONE"] = "Y" if record.get("PHONE") else "N"
            record["HAS_EMAIL"] = "Y" if record.get("EMAIL") else "N"
            imol = [i for i in record.get("IM") or [] if i["VALUE_TYPE"] in ("OPENLINE", "IMOL")]
            record["HAS_IMOL"] = "Y" if imol else "N"

    def _defaults(self, kind: CrmKind, new_id: int, now: str, by_user: int) -> dict[str, Any]:
        user = str(by_user)
        head = self._deal_head(new_id) if kind is DEAL else self._lead_head(new_id)
        stamps = {"ASSIGNED_BY_ID": user, "CREATED_BY_ID": user, "MODIFY_BY_ID": user}
        stamps |= {"DATE_CREATE": now, "DATE_MODIFY": now}
        if kind is DEAL:
            tail = {"OPENED": "Y", "CLOSED": "N", "COMMENTS": None, "ADDITIONAL_INFO": None}
            tail |= {"LOCATION_ID": None, "CATEGORY_ID": "0", "STAGE_SEMANTIC_ID": "P"}
            tail |= {"IS_NEW": "Y", "IS_RECURRING": "N", "IS_RETURN_CUSTOMER": "N"}
            tail |= {"IS_REPEATED_APPROACH": "N", "SOURCE_ID": "CALL", "SOURCE_DESCRIPTION": None}
        else:
            tail = {"DATE_CLOSED": "", "STATUS_SEMANTIC_ID": "P", "OPENED": "Y"}
        moved = {"ORIGINATOR_ID": None, "ORIGIN_ID": None, "MOVED_BY_ID": user, "MOVED_TIME": now}
        if kind is LEAD:
            moved |= {f"ADDRESS{k}": None for k in ("", "_2", "_CITY", "_POSTAL_CODE")}
            moved |= {f"ADDRESS_{k}": None for k in ("REGION", "PROVINCE", "COUNTRY")}
            moved |= {"ADDRESS_COUNTRY_CODE": None, "ADDRESS_LOC_ADDR_ID": None}
        utm = {f"UTM_{k}": None for k in ("SOURCE", "MEDIUM", "CAMPAIGN", "CONTENT", "TERM")}
        last = {"LAST_ACTIVITY_TIME": now, "LAST_ACTIVITY_BY": user}
        return head | stamps | tail | moved | utm | last

    def _deal_head(self, new_id: int) -> dict[str, Any]:
        # Key order and defaults of D:api-reference/crm/deals/crm-deal-get.md and
        # D:api-reference/crm/deals/crm-deal-add.md (TITLE "Deal #{id}", BEGINDATE the creation
        # date, CLOSEDATE seven days later, SOURCE_ID the first source).
        moment = self.clock()
        begin = self.stamp(moment.replace(hour=0, minute=0, second=0, microsecond=0))
        head = {"ID": str(new_id), "TITLE": f"Deal #{new_id}", "TYPE_ID": "SALE"}
        head |= {"STAGE_ID": None, "PROBABILITY": None, "CURRENCY_ID": self.currency}
        head |= {"OPPORTUNITY": "0.00", "IS_MANUAL_OPPORTUNITY": "N", "TAX_VALUE": "0.00"}
        head |= {"LEAD_ID": None, "COMPANY_ID": None, "CONTACT_ID": None, "QUOTE_ID": None}
        return head | {"BEGINDATE": begin, "CLOSEDATE": self.stamp(moment + timedelta(days=7))}

    def _lead_head(self, new_id: int) -> dict[str, Any]:
        # Key order of D:api-reference/crm/leads/crm-lead-get.md
        head = {"ID": str(new_id), "TITLE": f"Lead #{new_id}", "HONORIFIC": None, "NAME": ""}
        head |= {"SECOND_NAME": None, "LAST_NAME": None, "COMPANY_TITLE": None}
        head |= {"COMPANY_ID": None, "CONTACT_ID": None, "IS_RETURN_CUSTOMER": "N"}
        head |= {"BIRTHDATE": "", "SOURCE_ID": "CALL", "SOURCE_DESCRIPTION": None}
        head |= {"STATUS_ID": None, "STATUS_DESCRIPTION": None, "POST": None, "COMMENTS": None}
        head |= {"CURRENCY_ID": self.currency, "OPPORTUNITY": "0.00"}
        head |= {"IS_MANUAL_OPPORTUNITY": "N", "HAS_PHONE": "N", "HAS_EMAIL": "N"}
        return head | {"HAS_IMOL": "N"}
