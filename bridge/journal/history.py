"""What the journal knows of records' pasts, read for a whole batch of events at once.

The engine's facts about a record's past (the e-mails done in a stay, how often each field
changed, for the record and for its client) were three queries per event. A batch reads them
for all its records in three queries: what a batch's own events write is journaled only when
the batch ends, so every event of the batch sees the journal as the batch found it either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bridge.journal.tables import ActionRow, ChangeRow


@dataclass(frozen=True)
class History:
    """The pasts of a batch's records (and their clients) as the journal held them."""

    emails: dict[tuple[str, str, str], frozenset[str]] = field(default_factory=dict)
    changes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    client_changes: dict[str, dict[str, int]] = field(default_factory=dict)

    def emails_sent(self, kind: str, record_id: str, stay: str) -> frozenset[str]:
        """Templates e-mailed for a record during one stay."""
        return self.emails.get((kind, record_id, stay), frozenset())

    def change_counts(self, kind: str, record_id: str) -> dict[str, int]:
        """Field -> how many times it changed."""
        return dict(self.changes.get((kind, record_id), {}))

    def client_change_counts(self, client: Any) -> dict[str, int]:
        """Field -> how many times it changed over every record of one client."""
        return dict(self.client_changes.get(str(client), {}))


class HistoryReads:
    """Mixin of :class:`bridge.journal.Journal`: records' pasts, a batch at a time."""

    session: sessionmaker[Session]

    def history(
        self, tenant: str, refs: Iterable[tuple[str, str]], clients: Iterable[Any] = ()
    ) -> History:
        """The pasts of records ``(kind, id)`` and of clients, in one transaction."""
        wanted = set(refs)
        names = {str(c) for c in clients}
        with self.session() as s:
            return History(
                emails=_emails(s, tenant, wanted) if wanted else {},
                changes=_changes(s, tenant, wanted) if wanted else {},
                client_changes=_client_changes(s, tenant, names) if names else {},
            )

    def emails_sent(self, tenant: str, kind: str, record_id: str, stay: str) -> frozenset[str]:
        """Templates e-mailed for a record during one stay."""
        return self.history(tenant, [(kind, record_id)]).emails_sent(kind, record_id, stay)

    def change_counts(self, tenant: str, kind: str, record_id: str) -> dict[str, int]:
        """Field -> how many times it changed."""
        return self.history(tenant, [(kind, record_id)]).change_counts(kind, record_id)

    def client_change_counts(self, tenant: str, client: Any) -> dict[str, int]:
        """Field -> how many times it changed over every record of one client."""
        return self.history(tenant, [], [client]).client_change_counts(client)


def _emails(
    s: Session, tenant: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str, str], frozenset[str]]:
    # kinds and ids as IN lists on ix_actions_record; the pairs are matched here
    rows = s.execute(
        select(ActionRow.record_kind, ActionRow.record_id, ActionRow.stay, ActionRow.result).where(
            ActionRow.tenant == tenant,
            ActionRow.record_kind.in_({kind for kind, _ in wanted}),
            ActionRow.record_id.in_({record_id for _, record_id in wanted}),
            ActionRow.kind == "send_email",
            ActionRow.status == "done",
        )
    )
    found: dict[tuple[str, str, str], set[str]] = {}
    for kind, record_id, stay, result in rows:
        if (kind, record_id) in wanted:
            found.setdefault((kind, record_id, stay), set()).add(
                str((result or {}).get("template"))
            )
    return {key: frozenset(templates) for key, templates in found.items()}


def _changes(
    s: Session, tenant: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, int]]:
    rows = s.execute(
        select(ChangeRow.kind, ChangeRow.record_id, ChangeRow.field, func.count())
        .where(
            ChangeRow.tenant == tenant,
            ChangeRow.kind.in_({kind for kind, _ in wanted}),
            ChangeRow.record_id.in_({record_id for _, record_id in wanted}),
        )
        .group_by(ChangeRow.kind, ChangeRow.record_id, ChangeRow.field)
    )
    found: dict[tuple[str, str], dict[str, int]] = {}
    for kind, record_id, name, count in rows:
        if (kind, record_id) in wanted:
            found.setdefault((kind, record_id), {})[name] = count
    return found


def _client_changes(s: Session, tenant: str, names: set[str]) -> dict[str, dict[str, int]]:
    rows = s.execute(
        select(ChangeRow.client, ChangeRow.field, func.count())
        .where(ChangeRow.tenant == tenant, ChangeRow.client.in_(names))
        .group_by(ChangeRow.client, ChangeRow.field)
    )
    found: dict[str, dict[str, int]] = {}
    for client, name, count in rows:
        found.setdefault(client, {})[name] = count
    return found
