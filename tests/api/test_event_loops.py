"""One client, several event loops: a script that calls ``asyncio.run()`` twice with the
same ``OECClient`` works both times. The simulator runs on a loop of its own in a thread,
as a remote platform would."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oec_async import ConfigurationError, OECClient
from oec_async.testing import OECSimulator, SimulatorFactory


@contextmanager
def simulator_in_a_thread(**kwargs: Any) -> Iterator[OECSimulator]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    simulators = SimulatorFactory()
    sim = asyncio.run_coroutine_threadsafe(simulators(**kwargs), loop).result(10)
    try:
        yield sim
    finally:
        asyncio.run_coroutine_threadsafe(simulators.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_one_client_serves_two_asyncio_runs() -> None:
    with simulator_in_a_thread(seed=3) as sim:
        env = sim.environment_ids[0]
        client = OECClient(sim.api_key, sim.base_url)

        first = asyncio.run(client.list_backups(env))
        second = asyncio.run(client.list_backups(env))
        asyncio.run(client.close())
        gc.collect()  # an unclosed session of the first loop would warn here (an error)

    assert first == second
    assert len(sim.api_requests()) == 2


def test_pacing_waits_work_in_a_second_asyncio_run() -> None:
    # Concurrent callers queue on the limiter: its lock must belong to the running loop.
    async def burst(client: OECClient, env: Any) -> int:
        pages = await asyncio.gather(*(client.list_backups(env) for _ in range(4)))
        return len(pages)

    with simulator_in_a_thread(seed=3) as sim:
        env = sim.environment_ids[0]
        client = OECClient(sim.api_key, sim.base_url, requests_per_minute=2, rate_limit_period=0.2)

        counts = [asyncio.run(burst(client, env)), asyncio.run(burst(client, env))]
        asyncio.run(client.close())

    assert counts == [4, 4]


def test_one_client_downloads_in_two_asyncio_runs(tmp_path: Path) -> None:
    with simulator_in_a_thread(seed=3) as sim:
        env = sim.environment_ids[0]
        backups = [b.id for b in sim.backups(env) if b.status == "completed"][:2]
        client = OECClient(sim.api_key, sim.base_url)

        results = [asyncio.run(client.download_backup(b, tmp_path)) for b in backups]
        asyncio.run(client.close())
        gc.collect()

    assert [r.backup_id for r in results] == backups
    assert all(f.path.is_file() for r in results for f in r.files)


def test_a_client_closed_in_its_loop_leaves_nothing_open() -> None:
    async def use_and_close(client: OECClient, env: Any) -> None:
        async with client:
            await client.list_backups(env)

    with simulator_in_a_thread(seed=3) as sim:
        client = OECClient(sim.api_key, sim.base_url)
        asyncio.run(use_and_close(client, sim.environment_ids[0]))
        gc.collect()

        with pytest.raises(ConfigurationError, match="closed"):
            asyncio.run(client.list_backups(sim.environment_ids[0]))


def test_a_borrowed_session_of_another_loop_is_refused_and_left_alone() -> None:
    async def make_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = asyncio.run(make_session())
    try:
        with simulator_in_a_thread(seed=3) as sim:
            client = OECClient(sim.api_key, sim.base_url, session=session)

            with pytest.raises(ConfigurationError, match="another event loop"):
                asyncio.run(client.list_backups(sim.environment_ids[0]))
            asyncio.run(client.close())

        assert sim.api_requests() == []
        assert not session.closed  # still the caller's
    finally:
        asyncio.run(session.close())
