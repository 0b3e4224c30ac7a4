"""Cancellation at any moment (Ctrl-C, a task group failing, a timeout) leaves no thread
writing to a closed descriptor, no unretrieved error, and a resumable partial.

Found by the chaos soak (seed 694491): a download cancelled while its fsync (or a range's
write) ran in a worker thread closed the descriptor under it; the thread failed with
EBADF and asyncio reported "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator, SimulatorFactory
from tests._support import completed_backup, folder_of, stored_bytes

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
async def cancel_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(seed=694491, dump_size=2 * MiB)


@contextlib.contextmanager
def loop_errors_collected() -> Iterator[list[dict[str, Any]]]:
    """What the event loop would report (an unretrieved task error, say), collected."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)


async def cancel_when_served(
    client: OECClient, sim: OECSimulator, backup_id: uuid.UUID, dest: Path, after: int, **kw: Any
) -> None:
    task = asyncio.create_task(client.download_backup(backup_id, dest, **kw))
    waiter = asyncio.create_task(sim.wait_for_bytes(backup_id, "database", after))
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    task.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"buffer_size": 64 * KiB}, id="one-stream"),
        pytest.param(
            {
                "buffer_size": 64 * KiB,
                "segment_threshold": 1 * MiB,
                "min_segment_size": 128 * KiB,
                "segment_probe": 0.0,
            },
            id="segmented",
        ),
    ],
)
async def test_cancelling_at_random_moments_leaves_no_thread_behind(
    cancel_sim: OECSimulator, tmp_path: Path, options: dict[str, Any]
) -> None:
    sim = cancel_sim
    backup_id = completed_backup(sim)
    size = 2 * MiB
    rng = random.Random(694491)
    with loop_errors_collected() as loop_errors:
        async with OECClient(sim.api_key, sim.base_url) as client:
            for round_no in range(12):
                dest = tmp_path / f"round-{round_no}"
                # Cancel anywhere from the first bytes to the very end (fsync, rename).
                after = rng.randrange(1, size + 1)
                await cancel_when_served(client, sim, backup_id, dest, after, **options)
                sim.reset_records()
            gc.collect()  # an unretrieved task error is reported when it is collected
            await asyncio.sleep(0)
            # Whatever each round left, the next run finishes it, verified.
            result = await client.download_backup(backup_id, tmp_path / "round-3", **options)

    assert loop_errors == []
    assert result.verified
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    for round_no in range(12):
        part = folder_of(sim, tmp_path / f"round-{round_no}", backup_id) / "dump.sql.part"
        if part.exists() and "segment_threshold" not in options:
            kept = part.read_bytes()  # a one-stream partial is a clean prefix
            assert kept == stored_bytes(sim, backup_id, "database")[: len(kept)]


async def test_cancelled_while_the_final_fsync_runs_leaves_no_thread_behind(
    cancel_sim: OECSimulator, tmp_path: Path
) -> None:
    sim = cancel_sim
    backup_id = completed_backup(sim)
    with loop_errors_collected() as loop_errors:
        async with OECClient(sim.api_key, sim.base_url) as client:
            task: asyncio.Task[Any] | None = None

            def cancel_at_verification(event: Any) -> None:
                # The dump is complete and checked next: the next await is its fsync.
                if event.artifact == "database" and event.kind == "verifying" and task:
                    task.cancel()

            task = asyncio.create_task(
                client.download_backup(backup_id, tmp_path, progress=cancel_at_verification)
            )
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.2)  # the fsync thread finishes on its own time
            gc.collect()
            await asyncio.sleep(0)
            result = await client.download_backup(backup_id, tmp_path)

    assert loop_errors == []
    assert result.verified
    assert result.database is not None
    assert result.database.resumed_from > 0  # the complete partial was kept...
    assert result.database.bytes_transferred <= 1  # ...and confirmed with one byte
