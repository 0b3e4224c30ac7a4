"""The rate-limit model of API.md section 1, as the simulator enforces it: separate read
and write budgets per key per calendar window, 429s with or without headers,
``X-RateLimit-*`` on successes, ``ip_blocked`` after refused keys, and a request log a
test can count per key and per window."""

from __future__ import annotations

import math
import time

import aiohttp
import pytest

from oec_async.testing import OECSimulator, SimulatorSettings
from oec_async.testing._limits import RateLimiter, budget_for
from tests.testing.conftest import API

RATE_HEADERS = {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


def listing(sim: OECSimulator) -> str:
    return f"/environments/{sim.environment_ids[0]}/backups"


def taking(sim: OECSimulator, index: int = 0) -> str:
    return f"/environments/{sim.environment_ids[index]}/backups"


# -- budgets over the wire -------------------------------------------------------------


async def test_the_read_budget_refuses_the_request_after_the_last_allowed(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(read_limit=3, rate_window=3600)

    statuses = [(await api.get(listing(sim))).status for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    assert sim.rate_limited == 2


async def test_reads_and_writes_are_budgeted_separately(sim: OECSimulator, api: API) -> None:
    sim.configure(read_limit=4, write_limit=2, rate_window=3600, clock_speed=0)

    writes = [(await api.post(taking(sim, i), body={})).status for i in range(3)]
    reads = [(await api.get(listing(sim))).status for _ in range(4)]

    assert writes == [201, 201, 429]
    assert reads == [200] * 4  # the spent write budget leaves reads alone
    assert (await api.get(listing(sim))).status == 429


async def test_older_versions_count_an_rw_keys_reads_against_its_writes(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(read_limit=100, write_limit=2, rate_window=3600, shared_budget=True)

    rw = [(await api.get(listing(sim))).status for _ in range(3)]
    ro = [(await api.get(listing(sim), key=sim.read_only_key)).status for _ in range(3)]

    assert rw == [200, 200, 429]
    assert ro == [200, 200, 200]  # a read-only key keeps its read budget


async def test_each_key_has_budgets_of_its_own(sim: OECSimulator, api: API) -> None:
    sim.configure(read_limit=2, rate_window=3600)
    other = sim.add_key(name="shard-1")

    mine = [(await api.get(listing(sim))).status for _ in range(3)]
    theirs = [(await api.get(listing(sim), key=other)).status for _ in range(2)]

    assert mine == [200, 200, 429]
    assert theirs == [200, 200]


async def test_a_429_carries_retry_after_and_the_rate_limit_headers(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(read_limit=1, rate_window=3600)
    await api.get(listing(sim))

    refused = await api.get(listing(sim))

    window_end = (math.floor(time.time() / 3600) + 1) * 3600
    assert refused.status == 429
    assert refused.error_code() == "rate_limit_exceeded"
    assert set(refused.headers) >= RATE_HEADERS
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) == window_end
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.body["retry_after"] == int(refused.headers["Retry-After"])


async def test_current_versions_send_a_429_without_any_header(sim: OECSimulator, api: API) -> None:
    sim.configure(read_limit=1, rate_window=3600, rate_limit_headers=False)
    await api.get(listing(sim))

    refused = await api.get(listing(sim))

    assert refused.status == 429
    assert refused.error_code() == "rate_limit_exceeded"
    assert not {h for h in refused.headers if h.lower().startswith(("x-ratelimit", "retry"))}
    assert "retry_after" not in refused.body


async def test_a_successful_get_tells_the_keys_real_read_limit(sim: OECSimulator, api: API) -> None:
    sim.configure(read_limit=57, rate_window=3600)

    first = await api.get(listing(sim))
    second = await api.get(listing(sim))

    assert first.headers["X-RateLimit-Limit"] == "57"
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == (
        "56",
        "55",
    )
    assert "X-RateLimit-Reset" in first.headers


async def test_success_headers_can_be_switched_off(sim: OECSimulator, api: API) -> None:
    sim.configure(rate_headers_on_success=False)

    answer = await api.get(listing(sim))

    assert not {h for h in answer.headers if h.lower().startswith("x-ratelimit")}


async def test_every_request_on_the_wire_counts_even_one_a_fault_answered(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(read_limit=2, rate_window=3600)
    sim.faults.api_errors(503)

    statuses = [(await api.get(listing(sim))).status for _ in range(3)]

    assert statuses == [503, 200, 429]


async def test_redirect_hops_are_requests_of_their_own(sim: OECSimulator) -> None:
    sim.faults.api_redirect()  # the same URL again, once
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            sim.base_url + listing(sim), headers={"Authorization": f"Bearer {sim.api_key}"}
        ) as response,
    ):
        assert response.status == 200

    assert [r.status for r in sim.api_requests()] == [307, 200]
    assert sim.requests_per_window("default-rw") == {sim.api_requests()[0].window: 2}


# -- refused keys block the address --------------------------------------------------------


async def test_ten_refused_keys_block_the_address_even_for_a_good_key(
    sim: OECSimulator, api: API
) -> None:
    bad = "oec_live_rw_" + "x" * 32

    refusals = [(await api.get(listing(sim), key=bad)).status for _ in range(10)]
    blocked = await api.get(listing(sim))

    assert refusals == [401] * 10
    assert blocked.status == 429
    assert blocked.error_code() == "ip_blocked"
    assert 890 < int(blocked.headers["Retry-After"]) <= 900
    sim.unblock_addresses()
    assert (await api.get(listing(sim))).status == 200


async def test_the_block_threshold_is_a_setting_and_missing_keys_count(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(ip_block_after=2, rate_limit_headers=False)

    first, second = await api.get(listing(sim), key=None), await api.get(listing(sim), key=None)
    blocked = await api.get(listing(sim))

    assert (first.status, second.status) == (401, 401)
    assert blocked.status == 429
    assert blocked.error_code() == "ip_blocked"
    assert "Retry-After" not in blocked.headers


async def test_blocking_can_be_switched_off(sim: OECSimulator, api: API) -> None:
    sim.configure(ip_block_after=None)

    statuses = {(await api.get(listing(sim), key="nope")).status for _ in range(12)}

    assert statuses == {401}
    assert (await api.get(listing(sim))).status == 200


# -- the request log ---------------------------------------------------------------------------


async def test_the_log_names_each_requests_key_and_window_never_the_key(
    sim: OECSimulator, api: API
) -> None:
    shard = sim.add_key(name="shard-2")
    sim.configure(clock_speed=0, rate_window=3600)

    await api.get(listing(sim))
    await api.get(listing(sim), key=shard)
    await api.post(taking(sim), key=shard, body={})
    await api.get(listing(sim), key="oec_live_rw_" + "y" * 32)

    records = sim.api_requests()
    assert [r.key_id for r in records] == ["default-rw", "shard-2", "shard-2", None]
    assert [r.budget for r in records] == ["read", "read", "write", None]
    assert sim.key_id(shard) == "shard-2"
    window = records[0].window
    assert window == math.floor(records[0].wall / 3600)
    assert sim.requests_per_window("shard-2") == {window: 2}
    assert sim.requests_per_window("shard-2", budget="write") == {window: 1}
    assert sim.requests_per_window() == {window: 4}
    assert len(sim.api_requests(key_id="shard-2", method="POST")) == 1


async def test_a_shortened_window_is_what_the_log_counts_by(sim: OECSimulator, api: API) -> None:
    sim.configure(rate_window=0.5)

    await api.get(listing(sim))

    (record,) = sim.api_requests()
    assert record.window == math.floor(record.wall / 0.5)


# -- the model, as pure decisions -----------------------------------------------------------


def test_a_new_calendar_window_gives_the_budget_back() -> None:
    settings = SimulatorSettings(read_limit=2, rate_window=60)
    limiter = RateLimiter()
    start = 1_800_000_000.0  # a window boundary (divisible by 60)

    counts = [limiter.count("k", "read", settings, start + t) for t in (0, 10, 59.9, 60.0)]

    assert [u.over for u in counts] == [False, False, True, False]
    assert [u.count for u in counts] == [1, 2, 3, 1]
    assert counts[2].reset == start + 60
    refusal = limiter.refusal(counts[2], settings, start + 59.9)
    assert refusal is not None
    assert refusal.retry_after == 1


def test_an_address_block_lasts_its_seconds_and_counts_refusals_per_window() -> None:
    settings = SimulatorSettings(ip_block_after=3, ip_block_seconds=900, rate_window=60)
    limiter = RateLimiter()
    start = 1_800_000_000.0

    limiter.refuse_key("10.0.0.1", settings, start)
    limiter.refuse_key("10.0.0.1", settings, start + 30)
    limiter.refuse_key("10.0.0.1", settings, start + 61)  # a new window: the count restarts
    not_yet = limiter.blocked("10.0.0.1", settings, start + 62)
    limiter.refuse_key("10.0.0.1", settings, start + 62)
    limiter.refuse_key("10.0.0.1", settings, start + 63)

    assert not_yet is None
    assert limiter.blocked("10.0.0.1", settings, start + 64) is not None
    assert limiter.blocked("10.0.0.2", settings, start + 64) is None
    assert limiter.blocked("10.0.0.1", settings, start + 63 + 900) is None


@pytest.mark.parametrize(
    ("method", "scope", "shared", "budget"),
    [
        ("GET", "rw", False, "read"),
        ("POST", "rw", False, "write"),
        ("GET", "rw", True, "write"),
        ("GET", "ro", True, "read"),
        ("POST", "ro", False, "write"),
    ],
)
def test_which_budget_a_request_spends(method: str, scope: str, shared: bool, budget: str) -> None:
    assert budget_for(method, scope, SimulatorSettings(shared_budget=shared)) == budget
