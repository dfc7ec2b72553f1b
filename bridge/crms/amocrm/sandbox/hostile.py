"""An amoCRM hook's valid body for the hostile-input fuzzing (bridge/sandbox/hostile.py): the
secret in the path, leads' stage changes in the body, as «Формат данных хуков» shows them
(https://www.amocrm.ru/developers/content/crm_platform/webhooks-format, shared/reference/
amocrm.md §1.3)."""

from __future__ import annotations

import random

from bridge.sandbox.hostile import Pairs, Target


def target(tenant: str, secret: str, account_id: int) -> Target:
    """An amoCRM tenant's hook: the secret in the path, leads' stage changes in the body."""

    def valid(rnd: random.Random) -> Pairs:
        pairs: Pairs = []
        for n in range(rnd.randint(1, 3)):
            lead = f"leads[status][{n}]"
            pairs += [
                (f"{lead}[id]", str(rnd.randint(1, 10**8))),
                (f"{lead}[name]", "Поставка станков"),
                (f"{lead}[status_id]", str(rnd.choice([142, 143, 31044551]))),
                (f"{lead}[old_status_id]", "7039101"),
                (f"{lead}[pipeline_id]", "3104455"),
                (f"{lead}[price]", "150000"),
                (f"{lead}[responsible_user_id]", "504141"),
                (f"{lead}[last_modified]", str(1413554372 + rnd.randint(0, 10**6))),
                (f"{lead}[custom_fields][0][id]", "66339"),
                (f"{lead}[custom_fields][0][values][0][value]", "Сайт"),
            ]
        pairs += [
            ("account[subdomain]", "remarka"),
            ("account[id]", str(account_id)),
            ("account[_links][self]", "https://remarka.amocrm.ru"),
        ]
        return pairs

    ids = ("leads[status][0][id]", "leads[status][0][pipeline_id]", "account[id]")
    path = f"/hooks/amocrm/{tenant}/{secret}"
    return Target("amocrm", tenant, path, f"/hooks/amocrm/{tenant}/x{secret[1:]}", valid, ids)
