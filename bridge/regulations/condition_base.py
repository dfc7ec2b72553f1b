"""What every condition is: a small model that says whether it holds, whether it could hold
before the look-ups have run, and which fields, look-ups and constants it reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.deadlines import parse_deadline
from bridge.regulations.values import Ref, compare, resolve
from bridge.yamlfile import Strict

if TYPE_CHECKING:
    from bridge.regulations.engine import Scope


class ConditionBase(Strict):
    """A condition: what it reads, for `bridge validate`."""

    def holds(self, scope: Scope) -> bool:
        """Does the condition hold?"""
        raise NotImplementedError

    def possible(self, scope: Scope) -> bool:
        """Could it hold, whatever the look-ups find (they have not run yet)?"""
        return self.holds(scope)

    def fields(self) -> Iterator[str]:
        """The canonical field names the condition reads."""
        yield from ()

    def lookups(self) -> Iterator[str]:
        """The look-up names the condition reads."""
        yield from ()

    def constants(self) -> Iterator[str]:
        """The tenant's constants the condition reads."""
        yield from ()


def ref_fields(*operands: Any) -> Iterator[str]:
    for operand in operands:
        for item in operand if isinstance(operand, list) else [operand]:
            if isinstance(item, Ref) and item.field:
                yield item.field


def ref_constants(*operands: Any) -> Iterator[str]:
    for operand in operands:
        for item in operand if isinstance(operand, list) else [operand]:
            if isinstance(item, Ref) and item.constant:
                yield item.constant


def deadline_text(value: str | None) -> str | None:
    """Validator: the text is a deadline expression (the error lists the accepted forms)."""
    if value is not None:
        parse_deadline(value)
    return value


class Count(Strict):
    """A comparison of a count: ``{gte: 1}``, ``{gt: {constant: open_task_limit}}``."""

    gt: int | Ref | None = None
    gte: int | Ref | None = None
    lt: int | Ref | None = None
    lte: int | Ref | None = None
    equals: int | Ref | None = None

    def holds(self, n: int, scope: Scope) -> bool:
        """Does ``n`` satisfy every bound given?"""
        ops = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "equals": "eq"}
        for name, op in ops.items():
            bound = getattr(self, name)
            if bound is not None and not compare(n, resolve(bound, scope), op, "number", "UTC"):
                return False
        return True

    def constants(self) -> Iterator[str]:
        """The constants its bounds name."""
        yield from ref_constants(self.gt, self.gte, self.lt, self.lte, self.equals)


def age_test(op: str, since: datetime | None, duration: str, scope: Scope) -> bool:
    if since is None:
        return False  # an empty date is neither old nor new
    reached = parse_deadline(duration).due(scope.calendar, since) <= scope.now
    return reached if op == "older_than" else not reached
