"""Retries, Retry-After, connection failures, timeouts, and pacing under the rate limit."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time
from email.utils import formatdate
from typing import Any

import pytest
from aiohttp import web

from oec_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    NotFoundError,
    OECClient,
    RateLimitError,
    ServerError,
)
from oec_async._ratelimit import RateLimiter
from oec_async._retry import RetryPolicy, server_retry_after
from oec_async.testing import OECSimulator
from tests._support import within
from tests.api._servers import dripping_api, tiny_api

ENV = "6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f"
KEY = "oec_live_ro_" + "k" * 32
EMPTY_PAGE = {"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 1}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def statuses(sim: OECSimulator) -> list[int]:
    return [r.status for r in sim.api_requests()]


# -- Retry-After ---------------------------------------------------------------------------


# The waits below are longer than the first backoff can be (0.5 s): a client that ignored
# Retry-After and backed off instead could not pass by chance.


async def test_429_retry_after_seconds_is_honoured(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.rate_limit(retry_after=0.6)
    started = time.monotonic()

    page = await client.list_backups(sim.environment_ids[0])

    assert time.monotonic() - started >= 0.6
    assert page.total == 15
    assert statuses(sim) == [429, 200]
    first, retry = sim.api_requests()
    assert retry.at - first.at >= 0.6


async def test_429_retry_after_is_honoured_without_pacing(sim: OECSimulator) -> None:
    # With pacing on, the limiter's pause also holds the retry; without it, the retry
    # loop's own wait must.
    sim.faults.rate_limit(retry_after=0.6)

    async with OECClient(sim.api_key, sim.base_url, requests_per_minute=None) as client:
        await client.list_backups(sim.environment_ids[0])

    first, retry = sim.api_requests()
    assert (first.status, retry.status) == (429, 200)
    assert retry.at - first.at >= 0.6


async def test_503_retry_after_is_honoured(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.api_errors(503, retry_after=0.6)

    await client.list_backups(sim.environment_ids[0])

    first, retry = sim.api_requests()
    assert (first.status, retry.status) == (503, 200)
    assert retry.at - first.at >= 0.6


async def test_429_retry_after_http_date_is_honoured(sim: OECSimulator, client: OECClient) -> None:
    # An HTTP date has 1 s resolution: the server's "now + retry_after" is truncated to a
    # whole second. Choose retry_after so that date is at least half a second away.
    now = time.time()
    retry_after = 1.0 if now % 1 < 0.5 else 1.5
    not_before = math.floor(now + retry_after)
    sim.faults.rate_limit(retry_after=retry_after, http_date=True)

    await client.list_backups(sim.environment_ids[0])

    assert time.time() >= not_before
    assert statuses(sim) == [429, 200]
    first, retry = sim.api_requests()
    assert retry.at - first.at >= not_before - now - 0.05  # clock reads are not atomic


async def test_retry_after_in_body_only_is_honoured(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.rate_limit(retry_after=0.6, in_body=True)
    started = time.monotonic()

    await client.list_backups(sim.environment_ids[0])

    assert time.monotonic() - started >= 0.6
    assert statuses(sim) == [429, 200]


async def test_503_burst_is_retried_to_success(sim: OECSimulator, client: OECClient) -> None:
    assert client.max_retries == 3
    sim.faults.api_errors(503, times=3, retry_after=0.05)

    backup = await client.get_backup(sim.latest_completed(sim.environment_ids[0]).id)

    assert backup.is_completed
    assert statuses(sim) == [503, 503, 503, 200]


async def test_server_error_without_retry_after_is_retried_after_a_backoff(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(500, times=1)

    page = await client.list_backups(sim.environment_ids[0])

    assert page.total == 15
    assert statuses(sim) == [500, 200]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_is_retried(
    sim: OECSimulator, client: OECClient, status: int
) -> None:
    sim.faults.api_errors(status, times=1, retry_after=0.01)

    await client.list_backups(sim.environment_ids[0])

    assert statuses(sim) == [status, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_error_is_not_retried_even_with_retry_after(
    sim: OECSimulator, client: OECClient, status: int
) -> None:
    sim.faults.api_errors(status, times=1, retry_after=0.01)

    with pytest.raises(APIError, match=f"HTTP {status}"):
        await client.list_backups(sim.environment_ids[0])

    assert statuses(sim) == [status]


async def test_404_is_not_retried(sim: OECSimulator, client: OECClient) -> None:
    with pytest.raises(NotFoundError):
        await client.get_backup("00000000-0000-4000-8000-000000000000")

    assert len(sim.api_requests()) == 1
    assert client.api_requests_sent == 1


async def test_max_retries_zero_sends_exactly_one_request(sim: OECSimulator) -> None:
    sim.faults.api_errors(503, times=1, retry_after=0.01)

    async with OECClient(sim.api_key, sim.base_url, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.list_backups(sim.environment_ids[0])

    assert statuses(sim) == [503]


async def test_exhausted_retries_raise_the_last_server_error(sim: OECSimulator) -> None:
    sim.faults.api_errors(502, times=None, retry_after=0.01, message="upstream gone")

    async with OECClient(sim.api_key, sim.base_url, max_retries=2) as client:
        with pytest.raises(ServerError) as caught:
            await client.list_backups(sim.environment_ids[0])

    assert caught.value.status == 502
    assert caught.value.message == "upstream gone"
    assert statuses(sim) == [502, 502, 502]


async def test_exhausted_retries_on_429_raise_rate_limit_error(sim: OECSimulator) -> None:
    sim.faults.rate_limit(times=None, retry_after=0.05)

    async with OECClient(sim.api_key, sim.base_url, max_retries=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.list_backups(sim.environment_ids[0])

    assert caught.value.retry_after == pytest.approx(0.05)
    assert caught.value.code == "rate_limit_exceeded"
    assert statuses(sim) == [429, 429, 429]


async def test_429_asking_longer_than_max_retry_wait_raises_at_once(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.rate_limit(retry_after=900, code="ip_blocked")
    started = time.monotonic()

    with pytest.raises(RateLimitError) as caught:
        async with asyncio.timeout(5):  # a client that obeyed would park for 15 minutes
            await client.list_backups(sim.environment_ids[0])

    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 900
    assert caught.value.code == "ip_blocked"
    assert len(sim.api_requests()) == 1


async def test_max_retry_wait_is_the_callers_cap(sim: OECSimulator) -> None:
    sim.faults.rate_limit(retry_after=0.5)

    async with OECClient(sim.api_key, sim.base_url, max_retry_wait=0.2) as client:
        with pytest.raises(RateLimitError) as caught:
            async with asyncio.timeout(5):
                await client.list_backups(sim.environment_ids[0])

    assert caught.value.retry_after == 0.5
    assert len(sim.api_requests()) == 1


# -- no HTTP answer at all -----------------------------------------------------------------


async def test_connection_refused_is_retried_then_raised() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/api/public/v1"

    async with OECClient(KEY, base_url, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.list_backups(ENV)

    assert not isinstance(caught.value, APITimeoutError)
    assert client.api_requests_sent == 3
    assert f"GET /environments/{ENV}/backups" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_connection_refused_with_no_retries_is_one_attempt() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}/api/public/v1"

    async with OECClient(KEY, base_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.get_backup(ENV)

    assert client.api_requests_sent == 1


async def test_request_slower_than_timeout_is_api_timeout_error() -> None:
    release = asyncio.Event()
    hits: list[float] = []

    async def never_answers(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        await release.wait()
        return web.json_response(EMPTY_PAGE)

    async with tiny_api(never_answers) as base_url:
        try:
            async with OECClient(KEY, base_url, timeout=0.2, max_retries=1) as client:
                started = time.monotonic()
                with pytest.raises(APITimeoutError) as caught:
                    await client.list_backups(ENV)
                elapsed = time.monotonic() - started
        finally:
            release.set()

    assert isinstance(caught.value, APIConnectionError)
    assert len(hits) == 2  # the first attempt and one retry
    assert elapsed >= 0.4
    assert "timed out" in str(caught.value)
    assert f"GET /environments/{ENV}/backups" in str(caught.value)


@pytest.mark.parametrize(
    "drip",
    [
        {"line_every": 0.1},  # a header line every 0.1 s, never the end of the headers
        {"line_every": 0.1, "body": b'{"items": [], "total": 0}' * 4},  # a byte at a time
    ],
    ids=["headers", "body"],
)
async def test_dripped_answer_times_out_after_timeout(drip: dict[str, Any]) -> None:
    # Each line resets an idle (read) timeout: only a deadline on the whole exchange ends
    # it. The test's own deadline turns a hang into a failure.
    async with (
        dripping_api(**drip) as base_url,
        OECClient(KEY, base_url, timeout=0.5, max_retries=1) as client,
    ):
        with pytest.raises(APITimeoutError, match="timed out"):
            await within(client.list_backups(ENV), 5.0)


async def test_timeout_then_answer_is_retried_to_success() -> None:
    release = asyncio.Event()
    hits: list[float] = []

    async def slow_once(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        if len(hits) == 1:
            await release.wait()
        return web.json_response(EMPTY_PAGE)

    async with tiny_api(slow_once) as base_url:
        try:
            async with OECClient(KEY, base_url, timeout=0.2) as client:
                page = await client.list_backups(ENV)
        finally:
            release.set()

    assert page.total == 0
    assert len(hits) == 2


async def test_dropped_connections_are_retried_to_success() -> None:
    hits: list[float] = []

    async def drop_twice(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        if len(hits) <= 2:
            assert request.transport is not None
            request.transport.close()  # no status line: the client sees a disconnect
        return web.json_response(EMPTY_PAGE)

    async with (
        tiny_api(drop_twice) as base_url,
        OECClient(KEY, base_url, max_retries=3) as client,
    ):
        page = await client.list_backups(ENV)

    assert page.total == 0
    assert len(hits) == 3


# -- the retry policy and the Retry-After parser -------------------------------------------


def test_backoff_grows_exponentially_with_full_jitter_under_a_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(7)

    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spans the whole range
        assert min(delays) < ceiling * 0.2


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "0.3"}, None, 0.3),
        ({"Retry-After": " 7 "}, None, 7.0),
        ({"retry-after-ms": "250"}, None, 0.25),
        ({}, {"retry_after": 12}, 12.0),
        ({}, {"retry_after": "1.5"}, 1.5),
        ({}, {"detail": {"error": "rate_limit_exceeded", "retry_after": 30}}, 30.0),
        ({"Retry-After": "2"}, {"retry_after": 99}, 2.0),
        ({}, {"retry_after": -1}, None),
        ({}, {"retry_after": True}, None),
        ({"Retry-After": "soon"}, None, None),
        ({"Retry-After": "nan"}, None, None),
        ({}, None, None),
    ],
)
def test_retry_after_is_read_from_header_or_body(
    headers: dict[str, str], body: object, expected: float | None
) -> None:
    assert server_retry_after(headers, body) == expected


def test_retry_after_http_date_is_seconds_from_now() -> None:
    header = formatdate(time.time() + 30, usegmt=True)

    wait = server_retry_after({"Retry-After": header})

    assert wait is not None
    assert 28.5 <= wait <= 30.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert server_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


# -- client-side pacing --------------------------------------------------------------------


async def test_rate_limiter_never_starts_more_than_limit_per_period() -> None:
    limiter = RateLimiter(limit=5, period=0.5)
    starts: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        starts.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(15)))

    starts.sort()
    assert starts[-1] - began >= 1.0
    assert starts[4] - began < 0.25  # the first five go at once
    # Any 0.5 s window holds at most 5 starts <=> the i-th and (i+5)-th are 0.5 s apart.
    gaps = [later - earlier for earlier, later in zip(starts, starts[5:], strict=False)]
    assert min(gaps) >= 0.5 - 1e-3


async def test_rate_limiter_pause_holds_every_caller() -> None:
    limiter = RateLimiter(limit=100, period=60.0)
    limiter.pause(0.3)
    began = time.monotonic()

    await asyncio.gather(limiter.acquire(), limiter.acquire(), limiter.acquire())

    assert time.monotonic() - began >= 0.3


def test_rate_limiter_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(0)


async def test_paced_client_stays_under_the_servers_limit(sim: OECSimulator) -> None:
    sim.configure(read_limit=5, rate_window=0.5)
    env = sim.environment_ids[0]

    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=5, rate_limit_period=0.5
    ) as client:
        began = time.monotonic()
        pages = await asyncio.gather(*(client.list_backups(env) for _ in range(20)))
        elapsed = time.monotonic() - began

    assert [p.total for p in pages] == [15] * 20
    assert sim.rate_limited == 0
    assert statuses(sim) == [200] * 20
    assert elapsed >= 1.5  # 20 requests at 5 per 0.5 s: four windows


async def test_unpaced_burst_is_rate_limited_by_the_simulator(sim: OECSimulator) -> None:
    # The counterpart of the test above: the simulator's limit is real.
    sim.configure(read_limit=5, rate_window=0.5)
    env = sim.environment_ids[0]

    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=None, max_retries=0
    ) as client:
        results = await asyncio.gather(
            *(client.list_backups(env) for _ in range(20)), return_exceptions=True
        )

    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert refused
    assert sim.rate_limited == len(refused)
    assert all(r.retry_after is not None and r.retry_after >= 1 for r in refused)


async def test_429_pauses_every_concurrent_caller(sim: OECSimulator) -> None:
    # Pacing alone would start one request every 0.1 s; the first one is told to wait
    # 0.4 s, and that wait must hold the others too.
    sim.faults.rate_limit(retry_after=0.4)
    env = sim.environment_ids[0]

    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=1, rate_limit_period=0.1
    ) as client:
        pages = await asyncio.gather(*(client.list_backups(env) for _ in range(3)))

    assert [p.total for p in pages] == [15] * 3
    first, *rest = sim.api_requests()
    assert first.status == 429
    assert [r.status for r in rest] == [200, 200, 200]
    assert all(r.at - first.at >= 0.4 for r in rest)


async def test_exhausted_budget_header_pauses_the_next_request() -> None:
    # X-RateLimit-Remaining: 0 on a success means "the next one would be a 429": wait for
    # the reset instead of spending a request to learn it.
    hits: list[float] = []

    async def budget_spent(request: web.Request) -> web.Response:
        hits.append(time.monotonic())
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.3"}
        return web.json_response(EMPTY_PAGE, headers=headers if len(hits) == 1 else None)

    async with tiny_api(budget_spent) as base_url, OECClient(KEY, base_url) as client:
        await client.list_backups(ENV)
        await client.list_backups(ENV)

    assert hits[1] - hits[0] >= 0.3


async def test_429_without_retry_after_still_pauses_every_caller(sim: OECSimulator) -> None:
    sim.faults.api_errors(429, times=1, code="rate_limit_exceeded")  # no Retry-After at all
    async with OECClient(sim.api_key, sim.base_url, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            await client.list_backups(sim.environment_ids[0])
        assert client.rate_limiter is not None
        # At least one base backoff (0.5 s) for everyone sharing the client.
        assert client.rate_limiter.paused_for() > 0.3
