"""What the journal says about an event, for people: ``bridge journal`` and ``bridge explain``."""

from __future__ import annotations

from typing import Any

from bridge.masking import redact

ACTED = ("fired", "scheduled")


def headline(entry: dict[str, Any]) -> str:
    """``#12 2025-11-14 10:00:03 heating ONCRMDEALUPDATE deal 5: processed - 1 action(s) done``."""
    e = entry["event"]
    what = f"{e.kind} {e.record_id}" if e.record_id else (e.subject or "-")
    reason = f" - {redact(e.reason)}" if e.reason else ""
    return (
        f"#{e.id} {e.received_at:%Y-%m-%d %H:%M:%S} UTC {e.tenant} {e.source or e.crm} {what}: "
        f"{e.status}{reason}"
    )


def format_entry(entry: dict[str, Any]) -> str:
    """One journal entry as readable lines (``bridge journal``)."""
    lines = [headline(entry)]
    lines += [f"    rule {d.rule}: {d.verdict} ({d.detail})" for d in entry["decisions"]]
    lines += [f"    action {_action(a)}" for a in entry["actions"]]
    return "\n".join(lines)


def explain(entry: dict[str, Any]) -> str:
    """Every rule's verdict on an event and why, then what was done and what failed."""
    decisions = entry["decisions"]
    acted = [d for d in decisions if d.verdict in ACTED]
    idle = [d for d in decisions if d.verdict not in ACTED]
    lines = [headline(entry)]
    if not decisions:
        lines.append("no rule was judged" + _why_none(entry))
    if acted:
        lines.append("rules that acted:")
        lines += [f"  {d.rule}: {d.verdict} - {d.detail}" for d in acted]
    if idle:
        lines.append("rules that did not act:")
        lines += [f"  {d.rule}: {d.verdict} - {d.detail}" for d in idle]
    if entry["actions"]:
        lines.append("actions:")
        lines += [f"  {_action(a)}" for a in entry["actions"]]
    return "\n".join(lines)


def _action(a: Any) -> str:
    line = f"{a.kind} [{a.status}] {a.summary}"
    said = bool(a.error) and a.error in a.summary  # a summary may already say why
    if (a.status == "failed" or (a.error and a.status != "done")) and not said:
        line += f" - {redact(a.error) or 'no reason recorded'}"
    elif a.result:
        line += f" {a.result}"
    return line


def _why_none(entry: dict[str, Any]) -> str:
    status = entry["event"].status
    if status in ("queued", "retrying"):
        return f": the event is {status} (a worker has not finished it)"
    if status in ("rejected", "duplicate", "failed", "alert"):
        return f": the event was {status}"
    return ""
