"""Contacts of the Bitrix24 sandbox: the clients a deal names in ``CONTACT_ID``.

A mixin of :class:`~bridge.crms.bitrix24.sandbox.store.PortalStore`. A contact is read with
``crm.contact.get`` (D:api-reference/crm/contacts/crm-contact-get.md); its ``PHONE`` and
``EMAIL`` are multifields, lists of ``{"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"}``
(D:api-reference/crm/data-types.md#crm_multifield), as a lead's are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any


class Contacts:
    """The portal's contacts; relies on the store's lock, ids and clock."""

    lock: threading.RLock
    contacts: dict[int, dict[str, Any]]
    _seq: dict[str, Iterator[int]]

    def stamp(self, moment: datetime | None = None) -> str:
        """Format a datetime in portal time (provided by the store)."""
        raise NotImplementedError

    def add_contact(self, name: str, last_name: str, email: str, phone: str, by_user: int) -> int:
        """A contact with one work e-mail and one work phone (either may be empty)."""
        with self.lock:
            new_id = next(self._seq["contact"])
            now, user = self.stamp(), str(by_user)
            contact: dict[str, Any] = {
                **{"ID": str(new_id), "NAME": name, "SECOND_NAME": None, "LAST_NAME": last_name},
                **{"TYPE_ID": "CLIENT", "SOURCE_ID": "CALL", "OPENED": "Y", "EXPORT": "Y"},
                **{"ASSIGNED_BY_ID": user, "CREATED_BY_ID": user, "MODIFY_BY_ID": user},
                **{"DATE_CREATE": now, "DATE_MODIFY": now, "COMPANY_ID": None},
                **{"HAS_PHONE": "Y" if phone else "N", "HAS_EMAIL": "Y" if email else "N"},
            }
            for key, value in (("PHONE", phone), ("EMAIL", email)):
                if value:
                    item_id = str(next(self._seq["multifield"]))
                    item = {"ID": item_id, "VALUE_TYPE": "WORK", "VALUE": value, "TYPE_ID": key}
                    contact[key] = [item]
            self.contacts[new_id] = contact
            return new_id
