"""A Bitrix24 hook's valid body for the hostile-input fuzzing (bridge/sandbox/hostile.py):
an event with only the id in ``data`` and the token in ``auth``, as D:api-reference/events/
index.md shows it (shared/reference/bitrix24.md §1.2)."""

from __future__ import annotations

import random

from bridge.sandbox.hostile import Pairs, Target


def target(tenant: str, token: str) -> Target:
    """A Bitrix24 tenant's hook: events with only the id in ``data``, the token in ``auth``."""

    def valid(rnd: random.Random) -> Pairs:
        return [
            ("event", rnd.choice(["ONCRMDEALUPDATE", "ONCRMDEALADD", "ONCRMLEADUPDATE"])),
            ("event_handler_id", str(rnd.randint(1, 999))),
            ("data[FIELDS][ID]", str(rnd.randint(1, 10**7))),
            ("ts", str(1766047124 + rnd.randint(0, 10**6))),
            ("auth[domain]", "remarka.bitrix24.ru"),
            ("auth[client_endpoint]", "https://remarka.bitrix24.ru/rest/"),
            ("auth[server_endpoint]", "https://oauth.bitrix24.tech/rest/"),
            ("auth[member_id]", "d897063e1ce7c5eb9f04b9751eef5915"),
            ("auth[application_token]", token),
        ]

    path = f"/hooks/bitrix24/{tenant}"
    ids = ("data[FIELDS][ID]", "ts")
    return Target("bitrix24", tenant, path, path, valid, ids, "auth[application_token]")
