"""Reports for the head of sales: who breaks which rule, and how deadlines are kept.

Everything here works on two plain streams, whatever produced them: :class:`Judged` (a rule's
verdict on a record at a moment) and :class:`Change` (a field of a record changed). The
journal yields them for what the bridge saw (:mod:`bridge.reports.queries`); a backtest
yields them for what it would have seen (:mod:`bridge.backtest`). So a violation counted on a
page and one counted by a backtest are counted by the same code.
"""

from bridge.reports.tables import Table
from bridge.reports.verdicts import Change, Judged

__all__ = ["Change", "Judged", "Table"]
