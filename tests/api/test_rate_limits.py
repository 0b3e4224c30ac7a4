"""The platform's rate-limit model (API.md section 1) as the client lives it: separate
read and write budgets per calendar minute, 429s with and without headers, the key's real
limit learnt from ``X-RateLimit-Limit``, refused keys and blocked addresses."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from aiohttp import web

from oec_async import AuthenticationError, OECClient, RateLimitError
from oec_async.testing import OECSimulator, SimulatorFactory
from tests.api._servers import tiny_api

ENV = "6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f"
KEY = "oec_live_rw_" + "L" * 32
EMPTY_PAGE = {"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 1}
UNKNOWN_KEY = "oec_live_ro_" + "u" * 32
JITTER = 0.1


def max_in_any_window(times: list[float], window: float) -> int:
    """The most events any interval of ``window`` seconds holds."""
    times = sorted(times)
    return max(
        (sum(1 for later in times[i:] if later < start + window) for i, start in enumerate(times)),
        default=0,
    )


# -- 429 without any header ----------------------------------------------------------------


async def test_429_without_any_header_waits_until_just_past_the_next_window(
    sim: OECSimulator,
) -> None:
    # With a 1-second window, "one second past the next full minute" is a sixtieth of a
    # second past the next full second (wall clock: the server's calendar).
    sim.faults.api_errors(429, times=1, code="rate_limit_exceeded")
    wall, mono = time.time(), time.monotonic()

    async with OECClient(sim.api_key, sim.base_url, rate_limit_period=1.0) as client:
        await client.list_backups(sim.environment_ids[0])

    refused, retried = (wall + r.at - mono for r in sim.api_requests())
    assert [r.status for r in sim.api_requests()] == [429, 200]
    assert math.floor(retried) > math.floor(refused)  # not before the next window began
    assert retried % 1.0 >= 1 / 60 - 0.005


async def test_429_without_any_header_holds_every_caller_until_the_next_window(
    sim: OECSimulator,
) -> None:
    sim.faults.api_errors(429, times=1, code="rate_limit_exceeded")
    wall, mono = time.time(), time.monotonic()

    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=1, rate_limit_period=0.05
    ) as client:
        # pacing alone would send the next two 0.05 s apart, well inside the window
        pages = await asyncio.gather(
            *(client.list_backups(sim.environment_ids[0]) for _ in range(3))
        )

    assert [p.total for p in pages] == [15] * 3
    first, *rest = sim.api_requests()
    assert first.status == 429
    boundary = (math.floor((wall + first.at - mono) / 0.05) + 1) * 0.05
    assert all(wall + r.at - mono >= boundary - 0.005 for r in rest)


# -- the key's real limit ------------------------------------------------------------------


async def test_x_ratelimit_limit_on_a_get_lowers_the_read_pace() -> None:
    # The server says the key may read 6 a second; the client, configured for 100, paces a
    # sixth below it from the first answer on: 5 a second.
    arrivals: list[float] = []

    async def limited(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response(EMPTY_PAGE, headers={"X-RateLimit-Limit": "6"})

    async with (
        tiny_api(limited) as base_url,
        OECClient(KEY, base_url, requests_per_minute=100, rate_limit_period=1.0) as client,
    ):
        await client.list_backups(ENV)
        await asyncio.gather(*(client.list_backups(ENV) for _ in range(11)))
        assert client.rate_limiter is not None
        assert client.rate_limiter.limit == 5

    assert len(arrivals) == 12
    # Arrivals at the server lag the client's starts by a varying few ms (more on a
    # loaded machine): the window is narrowed by that jitter.
    assert max_in_any_window(arrivals, 1.0 - JITTER) <= 5


async def test_x_ratelimit_limit_never_raises_the_configured_pace() -> None:
    async def generous(request: web.Request) -> web.Response:
        return web.json_response(EMPTY_PAGE, headers={"X-RateLimit-Limit": "1000"})

    async with tiny_api(generous) as base_url, OECClient(KEY, base_url) as client:
        await client.list_backups(ENV)
        assert client.rate_limiter is not None
        assert client.rate_limiter.limit == 100


# -- refused keys --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["invalid_key", "key_expired", "missing_auth"])
async def test_refused_key_is_never_retried_and_later_calls_are_refused_locally(
    sim: OECSimulator, code: str
) -> None:
    sim.faults.api_errors(401, times=None, code=code)

    async with OECClient(sim.api_key, sim.base_url) as client:
        with pytest.raises(AuthenticationError) as first:
            await client.list_backups(sim.environment_ids[0])
        with pytest.raises(AuthenticationError) as later:
            await client.get_backup(sim.latest_completed(sim.environment_ids[0]).id)

    assert len(sim.api_requests()) == 1
    assert first.value.code == later.value.code == code
    assert str(later.value) == str(first.value)  # the same error, raised without a request


async def test_a_burst_with_an_unknown_key_sends_one_request(sim: OECSimulator) -> None:
    # Ten refused keys from one address block it: twenty concurrent calls with a bad key
    # must not become twenty refusals.
    async with OECClient(UNKNOWN_KEY, sim.base_url) as client:
        results = await asyncio.gather(
            *(client.list_backups(env) for env in sim.environment_ids * 7),
            return_exceptions=True,
        )

    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(sim.api_requests()) == 1


async def test_a_burst_with_a_good_key_is_sent_concurrently_once_the_key_answered(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    await client.list_backups(env)  # the key has been answered for
    sim.faults.api_errors(503, times=5, retry_after=0.3)

    burst = asyncio.gather(*(client.list_backups(env) for _ in range(5)))
    await asyncio.sleep(0.15)
    on_the_wire_at_once = len(sim.api_requests()) - 1
    await burst

    assert on_the_wire_at_once == 5


# -- blocked address -----------------------------------------------------------------------


async def test_ip_blocked_raises_at_once_and_later_calls_wait_out_the_block_locally(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.rate_limit(times=1, retry_after=900, code="ip_blocked")

    with pytest.raises(RateLimitError) as first:
        await client.list_backups(sim.environment_ids[0])
    with pytest.raises(RateLimitError) as later:
        await client.list_backups(sim.environment_ids[0])

    assert len(sim.api_requests()) == 1
    assert first.value.retry_after == 900
    assert later.value.code == "ip_blocked"
    assert later.value.retry_after is not None
    assert 890 < later.value.retry_after <= 900


async def test_ip_blocked_without_any_header_is_taken_for_fifteen_minutes(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(429, times=1, code="ip_blocked")

    with pytest.raises(RateLimitError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert caught.value.retry_after == 900
    assert len(sim.api_requests()) == 1


# -- against the simulator's own limits ----------------------------------------------------


async def test_the_platforms_headerless_429_is_waited_out_to_the_next_window(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    # Current API versions refuse with no header at all; pacing off, the client meets
    # the limit and must come back in the next calendar window, not before.
    sim = await oec_simulator_factory(
        seed=2,
        read_limit=3,
        rate_window=1.0,
        rate_limit_headers=False,
        rate_headers_on_success=False,
    )
    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=None, rate_limit_period=1.0
    ) as client:
        for _ in range(5):
            await client.list_backups(sim.environment_ids[0])

    log = sim.api_requests()
    statuses = [r.status for r in log]
    assert statuses.count(429) == 1
    refused = statuses.index(429)
    assert log[refused].headers.get("Retry-After") is None
    assert log[refused + 1].window == log[refused].window + 1
    assert sim.rate_limited == 1


async def test_an_older_api_counting_reads_against_the_write_budget_is_paced_under_it(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    # X-RateLimit-Limit: 20 on the first GET tells the key's real read limit; the client,
    # configured for 100, paces at 16 and never meets a 429.
    sim = await oec_simulator_factory(seed=2, shared_budget=True, write_limit=20, rate_window=1.0)
    async with OECClient(sim.api_key, sim.base_url, rate_limit_period=1.0) as client:
        await client.list_backups(sim.environment_ids[0])
        await asyncio.gather(*(client.list_backups(env) for env in sim.environment_ids * 12))
        assert client.rate_limiter is not None
        assert client.rate_limiter.limit == 16

    assert sim.rate_limited == 0
    assert max(sim.requests_per_window().values()) <= 20
