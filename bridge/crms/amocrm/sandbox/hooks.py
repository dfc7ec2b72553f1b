"""Account webhooks of the amoCRM sandbox: subscriptions, legacy bodies, batching, auto-disable.

https://www.amocrm.ru/developers/content/crm_platform/webhooks-format (form-encoded PHP bracket
keys, ``entity[action][n][field]``, legacy v2 entity shape) and
https://www.amocrm.ru/developers/content/crm_platform/webhooks-api (event codes, the
subscription API, «Обработка ответа от хука»: 2 s, a 2xx answer, disabled after more than 100
invalid answers in 2 hours). Reference §1. One attempt per post: the documented retries at
+5/+15/+15/+60 minutes are left out, a test cannot wait for them.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bridge.crms.amocrm.sandbox.data import HOOK_KEYS, LEGACY_ELEMENT_LEAD, LEGACY_NOTE_TYPES
from bridge.crms.amocrm.sandbox.fields import legacy as legacy_fields
from bridge.formdata import build_query
from bridge.sandbox.common import Post, Poster

# «Наш сервис ожидает ответ от хука не более 2 секунд».
ANSWER_TIMEOUT = 2.0
INVALID_WINDOW, INVALID_LIMIT = 2 * 3600.0, 100
# Legacy element_type codes (reference §1.4).
LEGACY_ELEMENT_TYPES = {
    "contacts": 1,
    "leads": LEGACY_ELEMENT_LEAD,
    "companies": 3,
    "customers": 12,
}

Emitted = tuple[str, dict[str, Any]]


def local_time(unix: int | float, tz: ZoneInfo) -> str:
    """``2017-07-22 23:59:00``: task deadlines and note dates in hooks are account-local strings."""
    return datetime.fromtimestamp(unix, tz).strftime("%Y-%m-%d %H:%M:%S")


def legacy_lead(lead: Mapping[str, Any], by_user: int, old: Mapping[str, Any] | None) -> dict:
    """A lead as ``leads[<action>][n]`` carries it (reference §1.3, field order of the example).

    Args:
        lead: the v4 record.
        by_user: ``modified_user_id``.
        old: ``{"status_id", "pipeline_id"}`` before a stage move (status hooks only).
    """
    out: dict[str, Any] = {"id": lead["id"], "name": lead["name"], "status_id": lead["status_id"]}
    if old is not None:
        out["old_status_id"] = old["status_id"]
    out["pipeline_id"] = lead["pipeline_id"]
    if old is not None:
        out["old_pipeline_id"] = old["pipeline_id"]
    out |= {"price": lead["price"] or 0, "responsible_user_id": lead["responsible_user_id"]}
    out |= {"last_modified": lead["updated_at"], "modified_user_id": by_user}
    out |= {"created_user_id": lead["created_by"], "date_create": lead["created_at"]}
    out |= {"created_at": lead["created_at"], "updated_at": lead["updated_at"]}
    out["account_id"] = lead["account_id"]
    tags = lead["_embedded"].get("tags") or []
    if tags:
        out["tags"] = [{"id": t["id"], "name": t["name"]} for t in tags]
    custom = legacy_fields(lead["custom_fields_values"])
    if custom:
        out["custom_fields"] = custom
    return out


def legacy_task(task: Mapping[str, Any], tz: ZoneInfo, *, closed: bool = False) -> dict:
    """A task as ``task[add|update][n]`` carries it (reference §1.4, official example)."""
    out: dict[str, Any] = {"id": task["id"], "element_id": task["entity_id"] or 0}
    out["element_type"] = LEGACY_ELEMENT_TYPES.get(task["entity_type"] or "", 0)
    out |= {"task_type": task["task_type_id"], "text": task["text"]}
    out["status"] = 1 if task["is_completed"] else 0
    if closed:
        out["action_close"] = 1
    out["responsible_user_id"] = task["responsible_user_id"]
    out["complete_till"] = local_time(task["complete_till"], tz)
    if task.get("result"):
        out["result"] = {"text": task["result"].get("text", "")}
    return out


def legacy_note(note: Mapping[str, Any], tz: ZoneInfo) -> dict:
    """A note as ``leads[note][n][note]`` carries it (reference §1.4, practice)."""
    inner: dict[str, Any] = {"id": note["id"], "element_id": note["entity_id"]}
    inner["element_type"] = LEGACY_ELEMENT_LEAD
    inner["note_type"] = LEGACY_NOTE_TYPES.get(note["note_type"], note["note_type"])
    inner["text"] = (note.get("params") or {}).get("text", "")
    inner |= {"created_by": note["created_by"], "date_create": local_time(note["created_at"], tz)}
    inner["created_at"] = note["created_at"]
    return {"note": inner}


def _entity_id(entity: Mapping[str, Any]) -> Any:
    return entity["note"]["id"] if "note" in entity else entity.get("id")


@dataclass
class Hook:
    """One subscription (a destination with its event codes)."""

    id: int
    destination: str
    settings: list[str]
    sort: int = 10
    disabled: bool = False
    invalid: deque[float] = field(default_factory=deque)

    def render(self) -> dict[str, Any]:
        """As POST/GET /api/v4/webhooks show it (reference §2.10)."""
        return {
            "id": self.id,
            "destination": self.destination,
            "settings": list(self.settings),
            "sort": self.sort,
            "disabled": self.disabled,
        }


class HookHub:
    """Subscriptions and the outgoing posts; ``account`` gives the ``account[...]`` block."""

    def __init__(self, account: Callable[[], dict[str, Any]], poster: Poster) -> None:
        self.account = account
        self.poster = poster
        self._lock = threading.RLock()
        self._hooks: dict[str, Hook] = {}
        self._ids = itertools.count(1056949)
        self._batch_depth = 0
        self._batched: list[Emitted] = []

    def subscribe(self, destination: str, settings: list[str], sort: int = 10) -> dict[str, Any]:
        """Add a hook; the same destination again replaces its events and re-enables it.

        Raises:
            ValueError: an event code the sandbox does not post.
        """
        unknown = [s for s in settings if s not in HOOK_KEYS]
        if unknown:
            raise ValueError(f"unsupported webhook events {unknown}; known: {sorted(HOOK_KEYS)}")
        with self._lock:
            hook = self._hooks.get(destination)
            if hook is None:
                hook = self._hooks[destination] = Hook(next(self._ids), destination, [])
            hook.settings, hook.sort, hook.disabled = list(settings), sort, False
            hook.invalid.clear()
            return hook.render()

    def unsubscribe(self, destination: str) -> bool:
        """Remove the hook of ``destination``; ``False`` when there was none."""
        with self._lock:
            return self._hooks.pop(destination, None) is not None

    def listing(self, destination: str | None = None) -> list[dict[str, Any]]:
        """Hooks in creation order, optionally only the one of ``destination``."""
        with self._lock:
            hooks = sorted(self._hooks.values(), key=lambda h: h.id)
            return [h.render() for h in hooks if destination in (None, h.destination)]

    def emit(self, code: str, entity: dict[str, Any]) -> None:
        """One change for the hooks subscribed to ``code`` (collected while batching)."""
        with self._lock:
            if self._batch_depth:
                self._batched.append((code, entity))
            else:
                self._send([(code, entity)])

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect changes and post them together, one POST per hook, on leaving."""
        with self._lock:
            self._batch_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                if not self._batch_depth:
                    items, self._batched = self._batched, []
                    self._send(items)

    def payload(self, items: list[Emitted]) -> dict[str, Any]:
        """The nested body: ``{entity: {action: {"0": {...}, "1": ...}}, "account": {...}}``."""
        body: dict[str, Any] = {}
        for code, entity in items:
            key, action = HOOK_KEYS[code]
            slot = body.setdefault(key, {}).setdefault(action, {})
            slot[str(len(slot))] = entity
        body["account"] = self.account()
        return body

    def _send(self, items: list[Emitted]) -> None:
        if not items:
            return
        for hook in sorted(self._hooks.values(), key=lambda h: (h.sort, h.id)):
            picked = [(c, e) for c, e in items if c in hook.settings]
            if hook.disabled or not picked:
                continue
            record = {"events": [c for c, _ in picked], "ids": [_entity_id(e) for _, e in picked]}
            record["body"] = build_query(self.payload(picked))
            self.poster.put(Post(hook.destination, record["body"], record, self._judge(hook)))

    def _judge(self, hook: Hook) -> Callable[[dict[str, Any]], None]:
        def judge(record: dict[str, Any]) -> None:
            status = record["status"]
            now = time.monotonic()
            with self._lock:
                while hook.invalid and hook.invalid[0] < now - INVALID_WINDOW:
                    hook.invalid.popleft()
                if status is not None and 100 <= status <= 299:
                    return
                hook.invalid.append(now)
                # «более 100 невалидных откликов и последний хук … так же является невалидным».
                if len(hook.invalid) > INVALID_LIMIT:
                    hook.disabled = True

        return judge
