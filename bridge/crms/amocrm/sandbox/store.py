"""The in-memory amoCRM account: users, pipelines, loss reasons, fields, leads and the events feed.

Leads are kept in the v4 read shape of https://www.amocrm.ru/developers/content/crm_platform/
leads-api (reference §2.1) and written with the checks of §2.2 and §2.7; tasks and notes live in
:mod:`bridge.crms.amocrm.sandbox.work`. Every change calls ``emit(code, legacy_entity)`` for the
account webhooks (:mod:`bridge.crms.amocrm.sandbox.hooks`).
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bridge.crms.amocrm.sandbox.data import (
    LOST,
    MISSING,
    NOT_A_CHOICE,
    NOT_EXPECTED,
    SYSTEM_STATUSES,
    WON,
    WRONG_TYPE,
)
from bridge.crms.amocrm.sandbox.fields import FieldBook, merge
from bridge.crms.amocrm.sandbox.hooks import legacy_lead
from bridge.crms.amocrm.sandbox.work import WorkItems

# Field ids of the contacts' standard multitext fields (the contacts-api example uses 3 for
# PHONE; the EMAIL id is the sandbox's own).
CONTACT_PHONE_FIELD, CONTACT_EMAIL_FIELD = 3, 5

# Keys a lead PATCH may carry: reference §2.2 plus name/responsible_user_id and the timestamps
# of the read shape (assessment: anything else is refused as FieldNotExpected).
LEAD_INT_KEYS = (
    "price",
    "status_id",
    "pipeline_id",
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closed_at",
)
LEAD_KEYS = (
    *LEAD_INT_KEYS,
    *("id", "request_id", "name", "loss_reason_id", "custom_fields_values"),
    *("tags_to_add", "tags_to_delete"),
)
NULLABLE = ("price", "closed_at", "loss_reason_id")
# Seeding (add_lead/update_lead, as the UI would) may also set embedded links.
SEED_KEYS = (*LEAD_KEYS, "_embedded")
LOSS_REASON_ONLY_LOST = "Loss reason can be specified only for lost lead"

# (request_id, code, path, detail)
Failure = tuple[str, str, str, str]


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


class AccountStore(WorkItems):
    """All entities of one account under one lock."""

    def __init__(
        self,
        *,
        account_id: int,
        subdomain: str,
        admin_id: int,
        clock: Callable[[], float],
        emit: Callable[[str, dict[str, Any]], None],
        tz: ZoneInfo,
    ) -> None:
        self.account_id = account_id
        self.subdomain = subdomain
        self.admin_id = admin_id
        self.clock = clock
        self.tz = tz
        self.lock = threading.RLock()
        self.users: dict[int, dict[str, Any]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.loss_reasons: dict[int, dict[str, Any]] = {}
        self.fields = FieldBook()
        self.leads: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.tags: dict[str, dict[str, Any]] = {}
        seeds = {"lead": 1000001, "task": 4745251, "note": 76787983, "tag": 100667}
        self._seq = {name: itertools.count(start) for name, start in seeds.items()}
        self._emit = emit

    def now(self) -> int:
        """The account's unix time."""
        return int(self.clock())

    # --- seeding -----------------------------------------------------------------------------

    def add_user(self, user_id: int, name: str, email: str, active: bool, admin: bool) -> None:
        """A user shaped as GET /api/v4/users lists it (reference §2.8)."""
        rights = {"leads": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"}}
        rights |= {"is_admin": admin, "is_free": False, "is_active": active}
        rights |= {"group_id": None, "role_id": None, "status_rights": []}
        with self.lock:
            self.users[user_id] = {
                **{"id": user_id, "name": name, "email": email, "lang": "ru"},
                "rights": rights,
            }

    def add_pipeline(self, pipeline_id: int, name: str, statuses: list[tuple[int, str]]) -> None:
        """A pipeline with ``statuses`` in order, then the system 142 and 143 (reference §2.3)."""
        rows = [(sid, sname, True) for sid, sname in statuses if sid not in (WON, LOST)]
        rows += [(sid, sname, False) for sid, sname in SYSTEM_STATUSES]
        with self.lock:
            self.pipelines[pipeline_id] = {
                **{"id": pipeline_id, "name": name, "sort": 1 + len(self.pipelines)},
                **{
                    "is_main": self._is_main(pipeline_id),
                    "is_unsorted_on": False,
                    "is_archive": False,
                },
                "account_id": self.account_id,
                "_embedded": {
                    "statuses": [self._status(pipeline_id, i, r) for i, r in enumerate(rows)]
                },
            }

    def _is_main(self, pipeline_id: int) -> bool:
        # The first pipeline is the main one; replacing a pipeline keeps its role.
        existing = self.pipelines.get(pipeline_id)
        return existing["is_main"] if existing else not self.pipelines

    @staticmethod
    def _status(pipeline_id: int, index: int, row: tuple[int, str, bool]) -> dict[str, Any]:
        status_id, name, editable = row
        sort = {WON: 10000, LOST: 11000}.get(status_id, 10 * (index + 1))
        return {
            **{"id": status_id, "name": name, "sort": sort, "is_editable": editable},
            **{"pipeline_id": pipeline_id, "color": "#99ccff", "type": 0},
        }

    def add_loss_reason(self, reason_id: int, name: str) -> None:
        """A loss reason shaped as ``_embedded.loss_reasons[]`` (reference §2.4)."""
        now = self.now()
        with self.lock:
            self.loss_reasons[reason_id] = {
                **{"id": reason_id, "name": name, "sort": 100000 + 10 * len(self.loss_reasons)},
                **{"created_at": now, "updated_at": now},
            }

    def add_contact(self, contact_id: int, name: str, email: str, phone: str) -> None:
        """A contact in the read shape of GET /api/v4/contacts/{id}.

        https://www.amocrm.ru/developers/content/crm_platform/contacts-api («Получение контакта
        по ID»): e-mail and phone are ``multitext`` fields with ``field_code`` EMAIL / PHONE
        and values ``{value, enum_id, enum}``.
        """
        now = self.now()
        fields = [
            {
                "field_id": fid,
                "field_name": fname,
                "field_code": code,
                "field_type": "multitext",
                "values": [{"value": value, "enum_id": eid, "enum": "WORK"}],
            }
            for fid, fname, code, eid, value in (
                (CONTACT_PHONE_FIELD, "Телефон", "PHONE", 1, phone),
                (CONTACT_EMAIL_FIELD, "Email", "EMAIL", 3, email),
            )
            if value
        ]
        with self.lock:
            self.contacts[contact_id] = {
                **{"id": contact_id, "name": name, "first_name": "", "last_name": ""},
                **{"responsible_user_id": self.admin_id, "group_id": 0},
                **{"created_by": self.admin_id, "updated_by": self.admin_id},
                **{"created_at": now, "updated_at": now, "closest_task_at": None},
                **{"is_deleted": False, "custom_fields_values": fields or None},
                "account_id": self.account_id,
                "_embedded": {"tags": [], "companies": []},
            }

    def render_contact(self, contact: Mapping[str, Any], with_: set[str]) -> dict[str, Any]:
        """A contact as GET returns it; ``with=leads`` embeds the ids of its leads."""
        out = copy.deepcopy(dict(contact))
        if "leads" in with_:
            out["_embedded"]["leads"] = [
                {"id": lead_id}
                for lead_id, lead in sorted(self.leads.items())
                if any(c.get("id") == contact["id"] for c in lead["_embedded"].get("contacts", []))
            ]
        return out

    def statuses(self, pipeline_id: int) -> list[int]:
        """Status ids of a pipeline (empty for an unknown one)."""
        pipeline = self.pipelines.get(pipeline_id)
        return [s["id"] for s in pipeline["_embedded"]["statuses"]] if pipeline else []

    # --- leads -------------------------------------------------------------------------------

    def check_lead(
        self, item: Any, rid: str, lead: Mapping[str, Any] | None, *, seed: bool = False
    ) -> tuple[dict[str, Any], list[Failure], dict[str, str]]:
        """Validate one lead write (PATCH item, or seeding when ``seed``).

        Returns:
            The normalised changes, the ``validation-errors`` failures and the ``errors``-by-id
            entries (reference §2.2/§3.3: e.g. a loss reason on a lead that is not lost).
        """
        if not isinstance(item, Mapping):
            return {}, [(rid, WRONG_TYPE[0], "", WRONG_TYPE[1])], {}
        allowed = SEED_KEYS if seed else LEAD_KEYS
        failures = [(rid, NOT_EXPECTED[0], k, NOT_EXPECTED[1]) for k in item if k not in allowed]
        changes = {k: item[k] for k in item if k in allowed and k not in ("id", "request_id")}
        failures += [(rid, *f) for f in self._lead_types(changes)]
        if "custom_fields_values" in changes:
            custom, bad = self.fields.check(changes.pop("custom_fields_values"))
            changes["custom"] = custom
            failures += [(rid, *f) for f in bad]
        failures += [(rid, *f) for f in self._lead_stage(changes, lead)]
        errors: dict[str, str] = {}
        if changes.get("loss_reason_id") is not None and changes.get("status_id") != LOST:
            errors[str(lead["id"] if lead else 0)] = LOSS_REASON_ONLY_LOST
        return changes, failures, errors

    def _lead_types(self, changes: dict[str, Any]) -> list[tuple[str, str, str]]:
        bad = []
        for key, value in changes.items():
            if value is None and key in NULLABLE:
                continue
            if key in (*LEAD_INT_KEYS, "loss_reason_id") and not is_int(value):
                bad.append((WRONG_TYPE[0], key, WRONG_TYPE[1]))
            elif key == "name" and not isinstance(value, str):
                bad.append((WRONG_TYPE[0], key, WRONG_TYPE[1]))
            elif key in ("tags_to_add", "tags_to_delete") and not _tag_list(value):
                bad.append((WRONG_TYPE[0], key, WRONG_TYPE[1]))
        responsible = changes.get("responsible_user_id")
        if is_int(responsible) and responsible not in self.users:
            bad.append((NOT_A_CHOICE[0], "responsible_user_id", NOT_A_CHOICE[1]))
        reason = changes.get("loss_reason_id")
        if reason is not None and is_int(reason) and reason not in self.loss_reasons:
            bad.append((NOT_A_CHOICE[0], "loss_reason_id", NOT_A_CHOICE[1]))
        return bad

    def _lead_stage(
        self, changes: dict[str, Any], lead: Mapping[str, Any] | None
    ) -> list[tuple[str, str, str]]:
        """Fill ``pipeline_id``/``status_id`` (defaults as a new card or a pipeline move gets)."""
        main = next((p for p in self.pipelines.values() if p["is_main"]), None)
        pipeline_id = changes.get("pipeline_id", lead["pipeline_id"] if lead else None)
        if pipeline_id is None and main is not None:
            pipeline_id = main["id"]
        if pipeline_id is not None and not is_int(pipeline_id):
            return []  # already a WRONG_TYPE failure
        if pipeline_id not in self.pipelines:
            return [(NOT_A_CHOICE[0], "pipeline_id", NOT_A_CHOICE[1])]
        status_id = changes.get("status_id")
        if status_id is None:
            same = lead is not None and lead["pipeline_id"] == pipeline_id
            status_id = lead["status_id"] if same else self.statuses(pipeline_id)[0]  # type: ignore[index]
        changes["pipeline_id"], changes["status_id"] = pipeline_id, status_id
        if status_id not in self.statuses(pipeline_id):
            return [(NOT_A_CHOICE[0], "status_id", NOT_A_CHOICE[1])]
        return []

    def create_lead(self, changes: dict[str, Any], by_user: int) -> dict[str, Any]:
        """Store a checked new lead and announce it (``add_lead``)."""
        now = self.now()
        with self.lock:
            lead_id = next(self._seq["lead"])
            lead: dict[str, Any] = {
                **{"id": lead_id, "name": "", "price": 0, "responsible_user_id": by_user},
                **{"group_id": 0, "status_id": changes["status_id"]},
                **{"pipeline_id": changes["pipeline_id"], "loss_reason_id": None},
                **{"created_by": by_user, "updated_by": by_user, "created_at": now},
                **{"updated_at": now, "closed_at": None, "closest_task_at": None},
                **{"is_deleted": False, "custom_fields_values": None, "score": None},
                "account_id": self.account_id,
                "_embedded": {"tags": [], "companies": [], "contacts": []},
            }
            if lead["status_id"] in (WON, LOST):
                lead["closed_at"] = now
            self._assign(lead, changes)
            self.leads[lead_id] = lead
            self._emit("add_lead", legacy_lead(lead, lead["updated_by"], None))
            return lead

    def update_lead(self, lead: dict[str, Any], changes: dict[str, Any], by_user: int) -> None:
        """Apply checked changes; announce update_lead, status_lead and responsible_lead."""
        now = self.now()
        with self.lock:
            old = {"status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}
            old_responsible = lead["responsible_user_id"]
            lead["updated_at"], lead["updated_by"] = now, by_user
            self._assign(lead, changes)
            moved = old != {"status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}
            if moved:
                self._moved(lead, old, changes, now)
            modifier = lead["updated_by"]
            self._emit("update_lead", legacy_lead(lead, modifier, None))
            if moved:
                self._emit("status_lead", legacy_lead(lead, modifier, old))
            if lead["responsible_user_id"] != old_responsible:
                self._emit("responsible_lead", legacy_lead(lead, modifier, None))

    def _assign(self, lead: dict[str, Any], changes: Mapping[str, Any]) -> None:
        for key, value in changes.items():
            if key == "custom":
                lead["custom_fields_values"] = merge(lead["custom_fields_values"], value)
            elif key == "tags_to_add":
                lead["_embedded"]["tags"] = self._tags_added(lead["_embedded"]["tags"], value)
            elif key == "tags_to_delete":
                drop = {(t.get("id"), t.get("name")) for t in value}
                lead["_embedded"]["tags"] = [
                    t
                    for t in lead["_embedded"]["tags"]
                    if (t["id"], None) not in drop and (None, t["name"]) not in drop
                ]
            elif key == "_embedded":
                lead["_embedded"] |= copy.deepcopy(dict(value))
            else:
                lead[key] = value

    def _moved(
        self, lead: dict[str, Any], old: dict[str, int], changes: Mapping[str, Any], now: int
    ) -> None:
        """A stage move: closed_at follows 142/143, the loss reason leaves with 143, and the
        events feed gets ``lead_status_changed`` (reference §2.2, §2.9)."""
        if "closed_at" not in changes:
            lead["closed_at"] = now if lead["status_id"] in (WON, LOST) else None
        if lead["status_id"] != LOST:
            lead["loss_reason_id"] = None
        self.events.append(
            {
                "id": secrets.token_hex(13),
                "type": "lead_status_changed",
                "entity_id": lead["id"],
                "entity_type": "lead",
                "created_by": lead["updated_by"],
                "created_at": now,
                "value_after": [
                    {"lead_status": {"id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}}
                ],
                "value_before": [
                    {"lead_status": {"id": old["status_id"], "pipeline_id": old["pipeline_id"]}}
                ],
                "account_id": self.account_id,
            }
        )

    def _tags_added(self, tags: list[dict[str, Any]], wanted: list[Mapping[str, Any]]) -> list:
        out = list(tags)
        for raw in wanted:
            tag = self._tag(raw)
            if tag is not None and all(t["id"] != tag["id"] for t in out):
                out.append(tag)
        return out

    def _tag(self, raw: Mapping[str, Any]) -> dict[str, Any] | None:
        if "id" in raw:
            return next((dict(t) for t in self.tags.values() if t["id"] == raw["id"]), None)
        name = str(raw.get("name", ""))
        if name not in self.tags:
            self.tags[name] = {"id": next(self._seq["tag"]), "name": name, "color": None}
        return dict(self.tags[name])

    def render_lead(self, lead: Mapping[str, Any], with_: set[str]) -> dict[str, Any]:
        """A lead as GET returns it: contacts and loss_reason embedded only when asked for.

        The doc table calls ``_embedded.loss_reason`` an object, its example an array; the
        example's array is used (reference §2.1).
        """
        out = copy.deepcopy(dict(lead))
        embedded = out["_embedded"]
        if "contacts" not in with_:
            embedded.pop("contacts", None)
        reason = self.loss_reasons.get(lead["loss_reason_id"] or 0)
        if "loss_reason" in with_ and reason is not None:
            embedded["loss_reason"] = [dict(reason)]
        return out


def _tag_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, Mapping) and ("id" in t or "name" in t) for t in value
    )


def missing(rid: str, path: str) -> Failure:
    """A ``FieldMissing`` failure."""
    return (rid, MISSING[0], path, MISSING[1])
