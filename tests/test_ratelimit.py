"""The Redis token bucket, against the session's own Redis (flushed around every test)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from bridge.crms.amocrm import AmoCRM, AmoCRMSettings
from bridge.crms.bitrix24 import Bitrix24, Bitrix24Settings
from bridge.ratelimit import KEY_PREFIX, RateLimiter, RateLimitTimeout

BITRIX24 = Bitrix24Settings(webhook_url_env="W", application_token_env="T")  # the defaults


@pytest.fixture
def r(redis_conn: redis.Redis) -> redis.Redis:
    return redis_conn


@pytest.fixture
def new_client(redis_url: str) -> Iterator[Callable[[], redis.Redis]]:
    """Clients of their own, as other processes would have."""
    made: list[redis.Redis] = []

    def make() -> redis.Redis:
        made.append(redis.Redis.from_url(redis_url))
        return made[-1]

    yield make
    for client in made:
        client.close()


class FakeClock:
    """A clock the test moves by hand, so refill arithmetic is checked exactly."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_burst_then_wait_of_one_interval(r: redis.Redis) -> None:
    rate, burst = BITRIX24.requests_per_second, BITRIX24.burst
    limiter = RateLimiter(r, "b24:portal", rate, burst)
    assert [limiter.try_acquire() for _ in range(burst)] == [0.0] * burst
    assert limiter.try_acquire() == pytest.approx(1 / rate, abs=0.05)


def test_refill_follows_the_clock(r: redis.Redis) -> None:
    clock = FakeClock()
    limiter = RateLimiter(r, "k", rate=4, burst=2, clock=clock)
    assert limiter.try_acquire() == limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(0.25)
    clock.now += 0.1
    assert limiter.try_acquire() == pytest.approx(0.15)
    clock.now += 0.15
    assert limiter.try_acquire() == 0.0
    clock.now += 100  # a long idle spell refills only up to the burst
    assert [limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]


def test_denied_attempt_takes_nothing(r: redis.Redis) -> None:
    clock = FakeClock()
    limiter = RateLimiter(r, "k", rate=1, burst=1, clock=clock)
    limiter.try_acquire()
    for _ in range(5):
        assert limiter.try_acquire() == pytest.approx(1.0)
    clock.now += 1
    assert limiter.try_acquire() == 0.0


def test_clock_stepping_back_mints_no_tokens(r: redis.Redis) -> None:
    clock = FakeClock()
    limiter = RateLimiter(r, "k", rate=1, burst=1, clock=clock)
    limiter.try_acquire()
    clock.now -= 10
    assert limiter.try_acquire() == pytest.approx(1.0)


def test_two_limiters_on_one_key_share_the_budget(
    r: redis.Redis, new_client: Callable[[], redis.Redis]
) -> None:
    clock = FakeClock()
    other = new_client()  # as a second process would have
    a = RateLimiter(r, "shared", rate=2, burst=3, clock=clock)
    b = RateLimiter(other, "shared", rate=2, burst=3, clock=clock)
    assert [a.try_acquire(), b.try_acquire(), a.try_acquire()] == [0.0, 0.0, 0.0]
    assert b.try_acquire() == pytest.approx(0.5)
    assert a.try_acquire() == pytest.approx(0.5)


def test_different_keys_are_independent(r: redis.Redis) -> None:
    clock = FakeClock()
    a = RateLimiter(r, "portal-a", rate=1, burst=1, clock=clock)
    b = RateLimiter(r, "portal-b", rate=1, burst=1, clock=clock)
    assert a.try_acquire() == 0.0
    assert a.try_acquire() > 0
    assert b.try_acquire() == 0.0


def test_state_is_one_hash_with_a_ttl(r: redis.Redis) -> None:
    limiter = RateLimiter(r, "portal", rate=2, burst=50)
    limiter.try_acquire()
    assert r.type(KEY_PREFIX + "portal") == b"hash"
    assert 25_000 < r.pttl(KEY_PREFIX + "portal") <= 26_000  # 50 / 2 s to refill, + 1 s


def test_threads_with_own_clients_never_exceed_the_rate(
    r: redis.Redis, new_client: Callable[[], redis.Redis]
) -> None:
    rate, burst, run_for = 7, 1, 2.0
    grants: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + run_for

    def hammer() -> None:
        limiter = RateLimiter(new_client(), "amo:acct", rate, burst)
        while time.monotonic() < stop:
            limiter.acquire(timeout=5)
            with lock:
                grants.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    grants.sort()
    busiest = max(sum(1 for t in grants if start <= t <= start + 1.0) for start in grants)
    assert busiest <= rate + burst
    assert len(grants) >= burst + rate * run_for - 2  # the bucket is used, not starved


def test_acquire_waits_for_the_next_slot(r: redis.Redis) -> None:
    limiter = RateLimiter(r, "k", rate=10, burst=1)
    start = time.monotonic()
    limiter.acquire()
    limiter.acquire()
    assert 0.08 <= time.monotonic() - start < 0.5


def test_acquire_times_out(r: redis.Redis) -> None:
    limiter = RateLimiter(r, "k", rate=0.5, burst=1)
    limiter.acquire()
    start = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0.3)
    assert time.monotonic() - start < 0.3
    assert issubclass(RateLimitTimeout, TimeoutError)


def test_acquire_async_waits_and_times_out(r: redis.Redis) -> None:
    limiter = RateLimiter(r, "k", rate=10, burst=1)

    async def scenario() -> float:
        start = time.monotonic()
        await limiter.acquire_async()
        await limiter.acquire_async()
        elapsed = time.monotonic() - start
        with pytest.raises(RateLimitTimeout):
            await limiter.acquire_async(timeout=0.01)
        return elapsed

    assert 0.08 <= asyncio.run(scenario()) < 0.5


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (1, 0)])
def test_rejects_nonsense_parameters(r: redis.Redis, rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(r, "k", rate, burst)


def test_each_crm_names_its_bucket_and_pace() -> None:
    # Bitrix24 counts per portal: 2 requests/s with a burst of 50 on most plans (D:limits.md)
    assert Bitrix24.limiter_key("remarka", BITRIX24) == "bitrix24:remarka"
    portal = BITRIX24.model_copy(update={"member_id": "member123"})
    assert Bitrix24.limiter_key("remarka", portal) == "bitrix24:member123"
    assert (Bitrix24.pace(BITRIX24), BITRIX24.burst) == (2.0, 50)
    # amoCRM counts per account, 7/s; the bridge paces itself 10% below (network jitter)
    amo = AmoCRMSettings(
        base_url="https://acme.amocrm.ru",
        account_id=42,
        auth="long_lived",
        long_lived_token_env="T",
        webhook_secret_env="S",
    )
    assert AmoCRM.limiter_key("acme", amo) == "amocrm:42"
    assert (AmoCRM.pace(amo), amo.burst) == (pytest.approx(6.3), 1)
