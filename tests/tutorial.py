"""docs/first-pack.md as data: the files it writes, the commands it runs, what they print.

A fenced block whose first line is ``# <path>`` is a file (``# add to <path>, ...`` is
appended to it); a ``sh`` block holds commands (``\\`` continues a line); a ``text`` block
right after a ``sh`` block is what the commands print (every line of it, but those holding
``…``, must appear in the output).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
FILE = re.compile(r"^# (?P<add>add to )?(?P<path>[\w./-]+\.(?:yaml|yml|txt|json))\b")


@dataclass(frozen=True)
class Command:
    """One command of the tutorial and what it must print."""

    args: list[str]
    shown: list[str]


def files(text: str) -> list[tuple[str, str, bool]]:
    """``(path, content, append)`` of every file block, in order."""
    out = []
    for _, body in FENCE.findall(text):
        first, _, rest = body.partition("\n")
        found = FILE.match(first)
        if found:
            out.append((found["path"], rest, bool(found["add"])))
    return out


def commands(text: str) -> list[Command]:
    """Every command of the ``sh`` blocks, with the lines of the ``text`` block after it."""
    fences = FENCE.findall(text)
    out = []
    for i, (lang, body) in enumerate(fences):
        if lang != "sh":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else ("", "")
        shown = after[1].splitlines() if after[0] == "text" and not FILE.match(after[1]) else []
        joined = body.replace("\\\n", " ")
        lines = [line for line in joined.splitlines() if line.strip()]
        for line in lines:
            out.append(Command(shlex.split(line), shown if line is lines[-1] else []))
    return out


def write(text: str, root: Path) -> None:
    """Write (or append) every file of the tutorial under ``root``."""
    for path, content, append in files(text):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        before = target.read_text(encoding="utf-8") if append and target.exists() else ""
        target.write_text(before.rstrip("\n") + "\n" + content if append else content, "utf-8")
