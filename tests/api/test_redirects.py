"""Redirects: the public API never redirects. A hop to the API's own origin (a proxy
adding a slash) is followed, paced and counted like any request; a hop elsewhere is
refused before anything is sent there."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiohttp import web

from oec_async import InvalidResponseError, OECClient
from oec_async.testing import OECSimulator
from tests.api._servers import PREFIX, Handler, tiny_api

KEY = "oec_live_ro_" + "r" * 32
BACKUP = uuid.UUID("9c2ad33c-7e5d-4d23-8f8c-9c3c5dc6c1f1")
BACKUP_JSON = {"id": str(BACKUP), "environment_id": str(uuid.uuid4()), "status": "completed"}


def hops_then_backup(hops: int, arrivals: list[float]) -> Handler:
    """``hops`` same-origin redirects (``/hop/1``, ``/hop/2``...) before the answer."""

    async def handler(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        tail = request.match_info["tail"]
        done = int(tail.split("/")[1]) if tail.startswith("hop/") else 0
        if done < hops:
            raise web.HTTPTemporaryRedirect(f"{PREFIX}/hop/{done + 1}")
        return web.json_response(BACKUP_JSON)

    return handler


async def test_every_redirect_hop_is_paced_like_a_request() -> None:
    # Three calls of five hops each against a budget of 5 per second: the old client took
    # one pacing slot per call and sent all fifteen requests at once.
    arrivals: list[float] = []

    async with (
        tiny_api(hops_then_backup(4, arrivals)) as base_url,
        OECClient(KEY, base_url, requests_per_minute=5, rate_limit_period=1.0) as client,
    ):
        backups = await asyncio.gather(*(client.get_backup(BACKUP) for _ in range(3)))

    assert [b.id for b in backups] == [BACKUP] * 3
    assert len(arrivals) == 15
    # No 1-second window holds more than 5 arrivals <=> the i-th and (i+5)-th are >= 1 s
    # apart (less the few ms by which arrivals lag the client's starts on a loaded machine).
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[5:], strict=False)]
    assert min(gaps) >= 1.0 - 0.1


async def test_every_redirect_hop_is_counted_as_a_request() -> None:
    arrivals: list[float] = []

    async with (
        tiny_api(hops_then_backup(2, arrivals)) as base_url,
        OECClient(KEY, base_url) as client,
    ):
        await client.get_backup(BACKUP)

    assert client.api_requests_sent == 3 == len(arrivals)


async def test_more_than_five_redirects_are_refused() -> None:
    arrivals: list[float] = []

    async with (
        tiny_api(hops_then_backup(10, arrivals)) as base_url,
        OECClient(KEY, base_url) as client,
    ):
        with pytest.raises(InvalidResponseError, match="more than 5 redirects") as caught:
            await client.get_backup(BACKUP)

    assert len(arrivals) == 6  # the request and five hops, then no retry
    assert caught.value.status == 307


async def test_redirect_to_another_origin_is_refused_and_nothing_is_sent_there(
    sim: OECSimulator,
) -> None:
    backup = sim.latest_completed(sim.environment_ids[0])

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{sim.base_url}/backups/{backup.id}?token=abcdef123456")

    async with tiny_api(elsewhere) as base_url, OECClient(sim.api_key, base_url) as client:
        with pytest.raises(InvalidResponseError, match="redirected to another origin") as caught:
            await client.get_backup(backup.id)

    assert sim.api_requests() == []
    assert client.api_requests_sent == 1
    assert caught.value.status == 302
    assert "abcdef123456" not in str(caught.value)  # the target's query is not quoted


async def test_the_platform_counts_every_hop_against_the_read_budget(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_redirect(times=2)  # to the same URL, twice: a proxy's loop

    page = await client.list_backups(sim.environment_ids[0])

    assert page.items
    assert [r.status for r in sim.api_requests()] == [307, 307, 200]
    assert client.api_requests_sent == 3
    assert sum(sim.requests_per_window(budget="read").values()) == 3
