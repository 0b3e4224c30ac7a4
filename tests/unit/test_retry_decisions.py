"""The pure decisions of the request loop: retry or raise, and how long to wait."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from oec_async._ratelimit import Pacer, RateLimiter, wait_past_next_window, within_limit
from oec_async._retry import Attempt, RetryPolicy, retry_delay

POLICY = RetryPolicy(max_retries=3, base=0.5, cap=8.0, max_wait=60.0)
GET = {"idempotent": True}
POST = {"idempotent": False}


def delay(retry: int = 1, /, **attempt: Any) -> float | None:
    return retry_delay(Attempt(**attempt), retry, POLICY, rng=random.Random(1))


@pytest.mark.parametrize(
    ("attempt", "retried"),
    [
        # no answer at all
        ({**GET, "sent": True}, True),
        ({**POST, "sent": False}, True),  # never connected: cannot have reached the server
        ({**POST, "sent": True}, False),  # may have created a backup: never resent
        ({**GET, "certificate": True, "sent": False}, False),
        # statuses
        ({**GET, "status": 503}, True),
        ({**GET, "status": 408}, True),
        ({**POST, "status": 503}, False),  # a gateway's 5xx: the POST may have acted
        ({**POST, "status": 429, "asked": 1.0}, True),  # refused without acting
        ({**POST, "status": 429, "next_window": 30.0}, True),
        ({**GET, "status": 429, "code": "ip_blocked", "asked": 900.0}, False),
        ({**GET, "status": 429, "code": "ip_blocked"}, False),
        ({**GET, "status": 401, "code": "invalid_key"}, False),
        ({**POST, "status": 403, "code": "read_only_key"}, False),
        ({**POST, "status": 409}, False),
        ({**GET, "status": 404}, False),
    ],
)
def test_what_is_retried(attempt: dict[str, Any], retried: bool) -> None:
    assert (delay(**attempt) is not None) is retried


def test_the_server_asked_wait_is_used_up_to_max_wait() -> None:
    assert delay(**GET, status=503, asked=12.5) == 12.5
    assert delay(**GET, status=429, asked=61.0) is None  # longer than max_wait: raise now


def test_a_429_without_any_header_waits_for_the_next_window_even_past_max_wait() -> None:
    assert delay(**GET, status=429, next_window=60.9) == 60.9


def test_no_retry_beyond_max_retries() -> None:
    assert delay(3, **GET, status=503) is not None
    assert delay(4, **GET, status=503) is None


@pytest.mark.parametrize(
    ("now", "period", "expected"),
    [
        (1_800_000_000.0, 60.0, 61.0),  # exactly on a minute: the next one, plus a second
        (1_800_000_030.0, 60.0, 31.0),
        (1_800_000_059.5, 60.0, 1.5),
        (1_800_000_000.25, 1.0, 0.75 + 1 / 60),
    ],
)
def test_wait_past_next_window(now: float, period: float, expected: float) -> None:
    assert wait_past_next_window(period, now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("server", "pace"), [(120, 100), (20, 16), (6, 5), (60, 50), (2, 1), (1, 1)]
)
def test_pace_is_a_sixth_under_the_server_limit(server: int, pace: int) -> None:
    assert within_limit(server) == pace


def test_learnt_limit_lowers_the_pace_and_never_raises_it_past_the_configured_one() -> None:
    limiter = RateLimiter(100, 60.0)

    limiter.learn_limit(20)  # an older API counting reads against the 20 writes
    assert limiter.limit == 16
    limiter.learn_limit(600)
    assert limiter.limit == 100


def test_a_shard_takes_its_share_of_the_limit_the_server_tells() -> None:
    """Four processes share one key: a server saying 60 a window leaves each a quarter of
    what the client keeps under 60 (50), not the whole of it."""
    limiter = RateLimiter(25, 60.0, share=1 / 4)

    limiter.learn_limit(60)
    assert limiter.limit == 12
    limiter.learn_limit(600)
    assert limiter.limit == 25  # never above what the shard was configured with


async def test_a_lowered_limit_holds_callers_already_in_the_window() -> None:
    limiter = RateLimiter(10, 0.3)
    for _ in range(6):
        await limiter.acquire()
    limiter.learn_limit(3)  # now 2 per window: six already count
    started = time.monotonic()

    await limiter.acquire()  # waits until the six have left the window

    assert time.monotonic() - started >= 0.25


def test_a_fifth_of_the_read_budget_is_one_read_every_five_periods_per_limit() -> None:
    assert Pacer(100, 15, 60.0).share_interval(0.2) == pytest.approx(3.0)
    assert Pacer(20, 15, 60.0).share_interval(0.2) == pytest.approx(15.0)
    assert Pacer(None, 15, 60.0).share_interval(0.2) == 0.0
