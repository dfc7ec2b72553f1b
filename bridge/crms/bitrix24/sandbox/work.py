"""Work items of the Bitrix24 sandbox: tasks, timeline comments and activities.

A mixin of :class:`~bridge.crms.bitrix24.sandbox.store.PortalStore`, kept apart because tasks speak
another dialect (UPPER_CASE in, camelCase out) than the crm.* family.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from bridge.crms.bitrix24.sandbox.data import (
    ACTIVITY_TEMPLATE,
    TASK_HIDDEN_UF,
    TASK_TEMPLATE,
    TASK_WRITABLE,
)
from bridge.crms.bitrix24.sandbox.query import (
    RestError,
    as_datetime,
    camel,
    names,
    normalize,
    to_int,
    upper_snake,
)

_TASK_DATES = ("DEADLINE", "START_DATE_PLAN", "END_DATE_PLAN", "DATE_START")


class WorkItems:
    """Tasks, comments and activities; relies on the store's lock, ids, clock and emit."""

    lock: threading.RLock
    users: dict[int, dict[str, Any]]
    tasks: dict[int, dict[str, Any]]
    comments: dict[int, dict[str, Any]]
    activities: dict[int, dict[str, Any]]
    _seq: dict[str, Iterator[int]]
    _emit: Callable[[str, int], None]

    def stamp(self, moment: datetime | None = None) -> str:
        """Format a datetime in portal time (provided by the store)."""
        raise NotImplementedError

    # --- timeline comments -----------------------------------------------------------------

    def add_comment(self, entity_type: str, entity_id: int, comment: str, *, by_user: int) -> int:
        """Store a timeline comment and announce it (onCrmTimelineCommentAdd).

        Shaped like the items of D:api-reference/crm/timeline/comments/crm-timeline-comment-list.md
        """
        with self.lock:
            new_id = next(self._seq["comment"])
            self.comments[new_id] = {
                **{"ID": str(new_id), "ENTITY_ID": str(entity_id), "ENTITY_TYPE": entity_type},
                **{"CREATED": self.stamp(), "COMMENT": comment, "AUTHOR_ID": str(by_user)},
                "FILES": {},
            }
            self._emit("ONCRMTIMELINECOMMENTADD", new_id)
            return new_id

    # --- tasks -------------------------------------------------------------------------------

    def add_task(self, fields: Mapping[str, Any], *, by_user: int) -> dict[str, Any]:
        """Create a task from UPPER_CASE fields; returns the stored (UPPER_CASE) task.

        Raises:
            RestError: the ERROR_CORE checks of D:api-reference/tasks/tasks-task-add.md.
        """
        values = {k: normalize(v) for k, v in fields.items() if k in TASK_WRITABLE}
        with self.lock:
            self._check_task(values)
            new_id = next(self._seq["task"])
            now, user = self.stamp(), str(by_user)
            task = {upper_snake(k): copy.deepcopy(v) for k, v in TASK_TEMPLATE.items()}
            task |= {"ID": str(new_id), "CREATED_BY": user, "CREATED_DATE": now}
            task |= {"CHANGED_BY": user, "CHANGED_DATE": now, "ACTIVITY_DATE": now}
            task |= {"STATUS_CHANGED_DATE": now, "GUID": "{" + str(uuid.uuid4()) + "}"}
            task |= {"UF_CRM_TASK": [], "UF_TASK_WEBDAV_FILES": [], "UF_MAIL_MESSAGE": None}
            task |= values
            for key in ("UF_CRM_TASK", "AUDITORS", "ACCOMPLICES"):
                task[key] = names(task[key])
            for key in _TASK_DATES:
                task[key] = self._task_date(task[key])
            task["CREATOR"] = self._task_user(task["CREATED_BY"])
            task["RESPONSIBLE"] = self._task_user(task["RESPONSIBLE_ID"])
            self.tasks[new_id] = task
            for entity in task["UF_CRM_TASK"]:
                self.tasks_bound.setdefault(str(entity), []).append(new_id)
            self._emit("ONTASKADD", new_id)
            return task

    def _check_task(self, values: Mapping[str, Any]) -> None:
        problems = []
        if not values.get("TITLE"):
            problems.append("Task title is not specified<br>")
        responsible = to_int(values.get("RESPONSIBLE_ID"))
        if values.get("RESPONSIBLE_ID") in (None, ""):
            problems.append("Responsible person not specified<br>")
        elif responsible not in self.users:
            problems.append('User specified in the "Responsible" field not found<br>')
        if problems:
            raise RestError(400, "ERROR_CORE", "".join(problems))

    def _task_date(self, value: Any) -> Any:
        moment = as_datetime(value) if isinstance(value, str) else None
        return self.stamp(moment) if moment else value

    def _task_user(self, user_id: Any) -> dict[str, str] | None:
        # The user block of D:api-reference/tasks/fields.md (#user).
        user = self.users.get(to_int(user_id) or 0)
        if user is None:
            return None
        full_name = f"{user['NAME']} {user['LAST_NAME']}".strip()
        return {
            **{
                "id": user["ID"],
                "name": full_name,
                "link": f"/company/personal/user/{user['ID']}/",
            },
            **{"icon": "/bitrix/images/tasks/default_avatar.png", "workPosition": ""},
        }

    @staticmethod
    def render_task(task: Mapping[str, Any], select: list[str]) -> dict[str, Any]:
        """A stored task as tasks.task.* return it: camelCase keys, ``select`` applied.

        UF_CRM_TASK & co. only when one is named (D:api-reference/tasks/fields.md: "Specify one
        of these fields in SELECT — all three will be returned").
        """
        wanted = {upper_snake(n) for n in select}
        if not wanted or "*" in wanted:
            keys = [k for k in task if k not in TASK_HIDDEN_UF]
        else:
            keys = [k for k in task if (k in wanted or k == "ID") and k not in TASK_HIDDEN_UF]
        if wanted & set(TASK_HIDDEN_UF):
            keys += TASK_HIDDEN_UF
        return {camel(k): copy.deepcopy(task[k]) for k in keys}

    # --- activities --------------------------------------------------------------------------

    def add_activity(self, fields: Mapping[str, Any], *, by_user: int) -> int:
        """Create an activity (seeding: every field accepted) and announce it."""
        with self.lock:
            new_id = next(self._seq["activity"])
            now = self.stamp()
            record = copy.deepcopy(ACTIVITY_TEMPLATE)
            record |= {"ID": str(new_id), "CREATED": now, "LAST_UPDATED": now}
            record |= {"START_TIME": now, "END_TIME": now, "DEADLINE": now}
            record |= {"RESPONSIBLE_ID": str(by_user), "AUTHOR_ID": str(by_user)}
            record["EDITOR_ID"] = str(by_user)
            record |= {str(k): normalize(v) for k, v in fields.items() if k != "ID"}
            self.activities[new_id] = record
            self._emit("ONCRMACTIVITYADD", new_id)
            return new_id

    def update_activity(self, activity_id: int, fields: Mapping[str, Any], *, by_user: int) -> None:
        """Change an activity (COMPLETED, DEADLINE...) and announce it."""
        with self.lock:
            record = self.activities[activity_id]
            record |= {str(k): normalize(v) for k, v in fields.items() if k != "ID"}
            record |= {"LAST_UPDATED": self.stamp(), "EDITOR_ID": str(by_user)}
            self._emit("ONCRMACTIVITYUPDATE", activity_id)
