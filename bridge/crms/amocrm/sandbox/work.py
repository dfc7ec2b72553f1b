"""Tasks and lead notes of the amoCRM sandbox (a mixin of ``AccountStore``).

Tasks: https://www.amocrm.ru/developers/content/crm_platform/tasks-api (reference §2.5) —
``text`` and ``complete_till`` (unix seconds) required, ``responsible_user_id`` defaults to the
token's user («по-умолчанию ID текущего пользователя»). Notes:
https://www.amocrm.ru/developers/content/crm_platform/events-and-notes (reference §2.6) —
``note_type`` plus ``params``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bridge.crms.amocrm.sandbox.data import (
    MISSING,
    NOT_A_CHOICE,
    NOT_EXPECTED,
    NOTE_TYPES,
    TASK_ENTITY_TYPES,
    TASK_TYPES,
    WRONG_TYPE,
)
from bridge.crms.amocrm.sandbox.hooks import legacy_note, legacy_task

TASK_KEYS = (
    *("text", "complete_till", "entity_id", "entity_type", "responsible_user_id"),
    *("task_type_id", "duration", "is_completed", "result", "created_by", "updated_by"),
    *("created_at", "updated_at", "request_id", "id"),
)
TASK_INTS = ("complete_till", "entity_id", "responsible_user_id", "task_type_id", "duration")
TASK_INTS += ("created_by", "updated_by", "created_at", "updated_at")
NOTE_KEYS = (
    *("entity_id", "note_type", "params", "created_by", "responsible_user_id"),
    *("created_at", "updated_at", "request_id", "is_need_to_trigger_digital_pipeline"),
)

Failure = tuple[str, str, str, str]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _f(rid: str, kind: tuple[str, str], path: str) -> Failure:
    return (rid, kind[0], path, kind[1])


class WorkItems:
    """Tasks and notes; relies on the store's lock, clock, sequences, users, leads and emit."""

    lock: threading.RLock
    account_id: int
    tz: ZoneInfo
    users: dict[int, dict[str, Any]]
    leads: dict[int, dict[str, Any]]
    tasks: dict[int, dict[str, Any]]
    notes: dict[int, dict[str, Any]]
    _seq: dict[str, Iterator[int]]
    _emit: Callable[[str, dict[str, Any]], None]

    def now(self) -> int:
        raise NotImplementedError

    # --- tasks -------------------------------------------------------------------------------

    def check_task(self, item: Any, rid: str, *, new: bool) -> tuple[dict[str, Any], list[Failure]]:
        """Validate a task for POST (``new``) or PATCH; returns the fields and the failures."""
        if not isinstance(item, Mapping):
            return {}, [_f(rid, WRONG_TYPE, "")]
        failures = [_f(rid, NOT_EXPECTED, k) for k in item if k not in TASK_KEYS]
        fields = {k: v for k, v in item.items() if k in TASK_KEYS and k not in ("request_id", "id")}
        if new:
            failures += [_f(rid, MISSING, k) for k in ("text", "complete_till") if k not in fields]
        for key, value in fields.items():
            if key in TASK_INTS and not _is_int(value):
                failures.append(_f(rid, WRONG_TYPE, key))
        if "text" in fields and not (isinstance(fields["text"], str) and fields["text"]):
            failures.append(_f(rid, WRONG_TYPE, "text"))
        if "is_completed" in fields and not isinstance(fields["is_completed"], bool):
            failures.append(_f(rid, WRONG_TYPE, "is_completed"))
        if "result" in fields and not isinstance(fields["result"], Mapping):
            failures.append(_f(rid, WRONG_TYPE, "result"))
        failures += self._task_choices(fields, rid)
        return fields, failures

    def _task_choices(self, fields: Mapping[str, Any], rid: str) -> list[Failure]:
        bad = []
        if "entity_type" in fields and fields["entity_type"] not in TASK_ENTITY_TYPES:
            bad.append(_f(rid, NOT_A_CHOICE, "entity_type"))
        if "entity_id" in fields and "entity_type" not in fields:
            bad.append(_f(rid, MISSING, "entity_type"))
        if "task_type_id" in fields and fields["task_type_id"] not in [t["id"] for t in TASK_TYPES]:
            bad.append(_f(rid, NOT_A_CHOICE, "task_type_id"))
        responsible = fields.get("responsible_user_id")
        if _is_int(responsible) and responsible not in self.users:
            bad.append(_f(rid, NOT_A_CHOICE, "responsible_user_id"))
        return bad

    def create_task(self, fields: Mapping[str, Any], owner: int) -> dict[str, Any]:
        """Store a checked task; a missing responsible is the token's user."""
        now = self.now()
        with self.lock:
            task_id = next(self._seq["task"])
            task: dict[str, Any] = {
                **{"id": task_id, "created_by": owner, "updated_by": owner},
                **{"created_at": now, "updated_at": now, "responsible_user_id": owner},
                **{"group_id": 0, "entity_id": None, "entity_type": None, "duration": 0},
                **{"is_completed": False, "task_type_id": 1, "text": "", "complete_till": 0},
                "account_id": self.account_id,
            }
            task |= copy.deepcopy(dict(fields))
            self.tasks[task_id] = task
            self._touch_closest(task)
            self._emit("add_task", legacy_task(task, self.tz))
            return task

    def update_task(self, task: dict[str, Any], fields: Mapping[str, Any], by_user: int) -> None:
        """Apply a checked PATCH; ``action_close`` marks the update that completed it."""
        with self.lock:
            was_open = not task["is_completed"]
            task |= {"updated_at": self.now(), "updated_by": by_user}
            task |= copy.deepcopy(dict(fields))
            self._touch_closest(task)
            closed = was_open and task["is_completed"]
            self._emit("update_task", legacy_task(task, self.tz, closed=closed))

    def tasks_of_lead(self, lead_id: int) -> list[dict[str, Any]]:
        """Tasks bound to a lead, in id order (copies)."""
        with self.lock:
            return [
                copy.deepcopy(t)
                for _, t in sorted(self.tasks.items())
                if t["entity_type"] == "leads" and t["entity_id"] == lead_id
            ]

    def _touch_closest(self, task: Mapping[str, Any]) -> None:
        # closest_task_at = the nearest open task's deadline (reference §2.1).
        lead = self.leads.get(task["entity_id"]) if task["entity_type"] == "leads" else None
        if lead is None:
            return
        open_ = [
            t["complete_till"] for t in self.tasks_of_lead(lead["id"]) if not t["is_completed"]
        ]
        lead["closest_task_at"] = min(open_) if open_ else None

    # --- notes -------------------------------------------------------------------------------

    def check_note(
        self, item: Any, rid: str, entity_id: int | None
    ) -> tuple[dict[str, Any], list[Failure]]:
        """Validate a note; ``entity_id`` comes from the path of ``/leads/{id}/notes``."""
        if not isinstance(item, Mapping):
            return {}, [_f(rid, WRONG_TYPE, "")]
        failures = [_f(rid, NOT_EXPECTED, k) for k in item if k not in NOTE_KEYS]
        fields = {k: v for k, v in item.items() if k in NOTE_KEYS and k != "request_id"}
        if entity_id is not None:
            fields["entity_id"] = entity_id
        if not _is_int(fields.get("entity_id")):
            failures.append(
                _f(rid, MISSING if "entity_id" not in fields else WRONG_TYPE, "entity_id")
            )
        note_type = fields.get("note_type")
        if note_type is None:
            failures.append(_f(rid, MISSING, "note_type"))
        elif note_type not in NOTE_TYPES:
            failures.append(_f(rid, NOT_A_CHOICE, "note_type"))
        params = fields.get("params")
        if not isinstance(params, Mapping):
            failures.append(_f(rid, MISSING if params is None else WRONG_TYPE, "params"))
        elif note_type in ("common", "service_message") and not isinstance(params.get("text"), str):
            failures.append(_f(rid, MISSING, "params.text"))
        return fields, failures

    def create_note(self, fields: Mapping[str, Any], owner: int) -> dict[str, Any]:
        """Store a checked lead note and announce it (``note_lead``)."""
        now = self.now()
        with self.lock:
            note_id = next(self._seq["note"])
            note: dict[str, Any] = {
                **{"id": note_id, "entity_id": fields["entity_id"], "created_by": owner},
                **{"updated_by": owner, "created_at": now, "updated_at": now},
                **{"responsible_user_id": owner, "group_id": 0},
                **{"note_type": fields["note_type"], "params": copy.deepcopy(fields["params"])},
                "account_id": self.account_id,
            }
            for key in ("created_by", "responsible_user_id", "created_at", "updated_at"):
                if key in fields:
                    note[key] = fields[key]
            self.notes[note_id] = note
            self._emit("note_lead", legacy_note(note, self.tz))
            return note

    def notes_of_lead(self, lead_id: int) -> list[dict[str, Any]]:
        """Notes of a lead, in id order (copies)."""
        with self.lock:
            return [
                copy.deepcopy(n) for _, n in sorted(self.notes.items()) if n["entity_id"] == lead_id
            ]
