"""What a stranger, a scanner or a broken CRM may post to a webhook: a valid body, mutated.

The suite's property-based test (tests/test_hostile_input.py, through hypothesis' ``randoms``)
and ``bench/fuzz.py`` (100,000 bodies, a seeded ``random.Random``) draw from the same
mutations, so what the benchmark measures is what the suite keeps true: no answer 5xx, nothing
queued from a refused body, and every accepted id one a worker can turn into a number.

Each CRM's sandbox says what a valid body for its hook is, as its documentation shows one
(``bridge/crms/<name>/sandbox/hostile.py``, a :class:`Target`); the mutations here know no CRM.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

FORM = "application/x-www-form-urlencoded"

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Target:
    """One tenant's hook: where it is, and how a valid body for it is made."""

    crm: str
    tenant: str
    path: str
    """The hook's path, with its secret when the secret is in the URL (amoCRM)."""
    stranger_path: str
    """The same hook with a wrong secret in the URL (or the same path, when it has none)."""
    valid: Callable[[random.Random], Pairs]
    ids: tuple[str, ...]
    """The keys of the valid body that hold ids (mutated into ``²``, 300 digits...)."""
    secret_key: str | None = None
    """The body key that holds the secret (Bitrix24's ``auth[application_token]``)."""


@dataclass(frozen=True)
class Post:
    """One request to send: path, content type (None: no header) and raw body."""

    path: str
    content_type: str | None
    body: bytes
    mutations: tuple[str, ...] = field(default=())


HOSTILE_IDS = [
    "²",  # str.isdigit() says yes, int() says no
    "١٢٣",  # Arabic-Indic digits: isdigit() and int() both say yes, no CRM has such an id
    "１２３",  # full-width digits
    "9" * 300,
    "9" * 19,
    "-1",
    "1e5",
    "0x1F",
    " 7",
    "7\n",
    "",
    "7; DROP TABLE events",
    "+79123456789",
    "\x00",
]


def _deep(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    # a new branch under an existing array (data[z][a][a]...), so that it really nests
    key = rnd.choice([k for k, _ in pairs] or ["data"])
    stem = key[: rnd.choice([i for i, c in enumerate(key) if c == "["] or [len(key)])]
    deep = stem + "[z]" + "[a]" * rnd.choice([1, 5, 9, 10, 11, 50, 1000])
    return [(deep, "1"), *pairs] if rnd.random() < 0.5 else [*pairs, (deep, "1")]


def _hostile_id(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    key, value = rnd.choice(target.ids), rnd.choice(HOSTILE_IDS)
    return [(k, value if k == key else v) for k, v in pairs]


def _nested_id(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    key = rnd.choice(target.ids)
    depth = rnd.choice([1, 3, 10, 300, 1000])
    return [(k + "[a]" * depth if k == key else k, v) for k, v in pairs]


def _drop(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    if not pairs:
        return pairs
    gone = rnd.randrange(len(pairs))
    return [p for i, p in enumerate(pairs) if i != gone]


def _under_scalar(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    key = rnd.choice([k for k, _ in pairs] or ["event"])
    return [*pairs, (f"{key}[x]", "1")] if rnd.random() < 0.5 else [(f"{key}[x]", "1"), *pairs]


def _malformed_key(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    bad = rnd.choice(["a[b", "]", "[x]", "a]b[", "a[b]c", "a[[b]]", "", "=", "a[\x00]"])
    return [*pairs, (bad, "1")]


def _long(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    if rnd.random() < 0.5:
        return [*pairs, ("k" * rnd.choice([255, 257, 5000]), "1")]
    key = rnd.choice([k for k, _ in pairs] or ["event"])
    return [(k, "x" * 100_000 if k == key else v) for k, v in pairs]


def _wrong_secret(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    if target.secret_key is None:
        return pairs  # the path carries it: see hostile()
    forged = rnd.choice(["", "forged", "x" * 500, "тайна"])
    return [(k, forged if k == target.secret_key else v) for k, v in pairs]


def _odd_text(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    key = rnd.choice([k for k, _ in pairs] or ["event"])
    text = "".join(chr(rnd.randint(0, 0x2FFF)) for _ in range(rnd.randint(0, 40)))
    return [(k, text if k == key else v) for k, v in pairs]


def _shuffle(pairs: Pairs, target: Target, rnd: random.Random) -> Pairs:
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    return shuffled


MUTATIONS: dict[str, Callable[[Pairs, Target, random.Random], Pairs]] = {
    "deep": _deep,
    "hostile_id": _hostile_id,
    "nested_id": _nested_id,
    "drop": _drop,
    "under_scalar": _under_scalar,
    "malformed_key": _malformed_key,
    "long": _long,
    "wrong_secret": _wrong_secret,
    "odd_text": _odd_text,
    "shuffle": _shuffle,
}
"""Mutations of a body's pairs, each named in the post it makes (to tell what broke)."""

RAW = [
    b"",
    b"&&&=&=",
    b"%ZZ%FF%00=%E2%82",
    b"\xff\xfe\x00garbage",
    b"a=1&" * 40_000,
    b"x" * (1024 * 1024 + 1),
]
"""Whole bodies a form parser must survive."""

FILLERS = {n: b"".join(b"&k%d=" % i for i in range(n)) for n in (100, 9_000, 10_001, 30_000)}
"""Keys appended to a body: under, at and over the limit of 10,000 (made once, as bytes)."""


def hostile(target: Target, rnd: random.Random) -> Post:
    """A post for ``target``: its valid body under zero to three mutations, sometimes a raw
    body, another content type or a wrong secret in the path."""
    pairs, names = target.valid(rnd), []
    for _ in range(rnd.choice([0, 1, 1, 2, 3])):
        name = rnd.choice(list(MUTATIONS))
        pairs, names = MUTATIONS[name](pairs, target, rnd), [*names, name]
    body = encode(pairs)
    if rnd.random() < 0.1:
        body, names = (
            body + FILLERS[rnd.choice([100, 100, 10_001, 30_000, 9_000])],
            [*names, "many_keys"],
        )
    if rnd.random() < 0.05:
        body, names = rnd.choice(RAW), [*names, "raw"]
    content_type: str | None = FORM
    if rnd.random() < 0.05:
        content_type = rnd.choice([None, "application/json", "multipart/form-data; boundary=x"])
        names.append("content_type")
    path = target.path
    if rnd.random() < 0.05 and target.stranger_path != target.path:
        path, names = target.stranger_path, [*names, "wrong_path_secret"]
    return Post(path, content_type, body, tuple(names))


def encode(pairs: Pairs) -> bytes:
    """Pairs as PHP's ``http_build_query`` sends them: all but unreserved bytes %-encoded."""
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs).encode()


@functools.lru_cache(maxsize=1 << 16)
def _quote(text: str) -> str:
    # the same keys and values come back in most posts: a 100,000-body run quotes each once
    return quote(text, safe="")
