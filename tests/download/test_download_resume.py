"""Interrupted transfers: drops, stalls, restarts, cancellation, kill -9, storage errors.

Every test runs the real downloader against the simulator over loopback sockets; faults
fire at absolute byte offsets, so where a transfer breaks is deterministic.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from oec_async import DownloadError, OECClient, StorageError
from oec_async.download import ProgressEvent
from oec_async.testing import OECSimulator, SimulatorFactory
from tests._support import (
    assert_all_bytes_match,
    completed_backup,
    stored_bytes,
    within,
    work_folder_of,
)

KiB = 1024
MiB = 1024 * KiB
DUMP_SIZE = 1 * MiB  # big_sim's dump (tests/download/conftest.py)
KILL_DUMP_SIZE = 4 * MiB
CHILD = Path(__file__).parent.parent / "_child_download.py"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ProgressWatch:
    """A progress callback that records events and lets a test await a point in them."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self._waiters: list[tuple[str, int, asyncio.Future[None]]] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        for waiter in list(self._waiters):
            artifact, amount, future = waiter
            if event.artifact == artifact and event.bytes_done >= amount:
                self._waiters.remove(waiter)
                if not future.done():
                    future.set_result(None)

    async def reached(self, artifact: str, amount: int) -> None:
        """Return once ``amount`` bytes of ``artifact`` are confirmed on disk."""
        if any(e.artifact == artifact and e.bytes_done >= amount for e in self.events):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((artifact, amount, future))
        await future

    def of(self, artifact: str) -> list[ProgressEvent]:
        return [e for e in self.events if e.artifact == artifact]


async def settle(task: asyncio.Task[Any]) -> None:
    """Cancel a task if it still runs, and wait for it whatever its fate."""
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def interrupt_mid_dump(
    sim: OECSimulator,
    client: OECClient,
    backup_id: uuid.UUID,
    dest: Path,
    *,
    stall_at: int,
    buffer_size: int,
) -> None:
    """Run 1, stopped the way Ctrl-C stops asyncio: the task is cancelled mid-dump, with
    at least half of ``stall_at`` bytes confirmed on disk."""
    sim.faults.stall_after(stall_at)
    watch = ProgressWatch()
    task = asyncio.create_task(
        client.download_backup(backup_id, dest, progress=watch, buffer_size=buffer_size)
    )
    try:
        await within(sim.wait_for_bytes(backup_id, "database", stall_at))
        await within(watch.reached("database", stall_at // 2))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        sim.faults.release_stalls()
        await settle(task)


# -- dropped connections -------------------------------------------------------------------


async def test_dropped_connection_is_resumed_with_a_range_request(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    drop_at = 300 * KiB
    big_sim.faults.drop_after(drop_at)

    result = await big_client.download_backup(backup_id, tmp_path)

    requests = big_sim.storage_requests("database")
    assert requests[0].range is None
    resumed_at = [
        int(m.group(1)) for r in requests if (m := re.fullmatch(r"bytes=(\d+)-", r.range or ""))
    ]
    assert len(resumed_at) == 1
    assert 0 < resumed_at[0] <= drop_at
    assert requests[-1].status == 206
    assert "If-Range" in requests[-1].headers
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")
    assert result.database.verified
    assert result.verified
    assert result.database.bytes_transferred < 2 * DUMP_SIZE
    assert result.database.bytes_transferred == DUMP_SIZE  # nothing fetched twice


async def test_several_drops_in_one_transfer_are_each_resumed(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    for offset in (100 * KiB, 400 * KiB, 900 * KiB):
        big_sim.faults.drop_after(offset)

    result = await big_client.download_backup(backup_id, tmp_path)

    assert len([r for r in big_sim.storage_requests("database") if r.range]) == 3
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")


async def test_content_length_promising_more_than_is_sent_is_recovered(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    big_sim.faults.lie_content_length(4096)

    result = await big_client.download_backup(backup_id, tmp_path)

    assert len(big_sim.storage_requests("database")) >= 2
    assert result.verified
    assert_all_bytes_match(big_sim, result)


async def test_server_ignoring_range_restarts_from_zero_cleanly(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    big_sim.faults.drop_after(500 * KiB)
    big_sim.faults.ignore_range()
    watch = ProgressWatch()

    result = await big_client.download_backup(backup_id, tmp_path, progress=watch)

    requests = big_sim.storage_requests("database")
    assert [(r.range is not None, r.status) for r in requests] == [(False, 200), (True, 200)]
    assert "restart" in [e.kind for e in watch.of("database")]
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")


async def test_wrong_content_range_on_resume_restarts_cleanly(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    big_sim.faults.drop_after(600 * KiB)
    rule = big_sim.faults.wrong_content_range()
    watch = ProgressWatch()

    result = await big_client.download_backup(backup_id, tmp_path, progress=watch)

    assert rule.fired == 1
    requests = big_sim.storage_requests("database")
    assert [(r.range is not None, r.status) for r in requests] == [
        (False, 200),
        (True, 206),
        (False, 200),
    ]
    assert "restart" in [e.kind for e in watch.of("database")]
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")


# -- progress ------------------------------------------------------------------------------


def assert_byte_accurate(events: list[ProgressEvent], size: int) -> None:
    assert events, "no progress event"
    for event in events:
        if event.total is not None:
            assert event.bytes_done <= event.total, event
    for previous, event in itertools.pairwise(events):
        if event.kind != "restart":
            assert event.bytes_done >= previous.bytes_done, (previous, event)
    progress = [e for e in events if e.kind == "progress"]
    assert progress[-1].bytes_done == size == progress[-1].total
    assert events[-1].kind == "done"
    assert events[-1].bytes_done == size


async def test_progress_is_byte_accurate_through_a_drop_and_a_resume(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    big_sim.faults.drop_after(333 * KiB)
    watch = ProgressWatch()

    await big_client.download_backup(backup_id, tmp_path, progress=watch, buffer_size=64 * KiB)

    events = watch.of("database")
    assert_byte_accurate(events, DUMP_SIZE)
    kinds = [e.kind for e in events]
    assert "retry" in kinds
    assert "restart" not in kinds
    assert {e.backup_id for e in watch.events} == {backup_id}
    for artifact in ("manifest", "filestore"):
        size = big_sim.object(backup_id, artifact).size
        assert_byte_accurate(watch.of(artifact), size)


async def test_progress_goes_back_to_zero_only_with_a_restart_event(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    big_sim.faults.drop_after(700 * KiB)
    big_sim.faults.ignore_range()
    watch = ProgressWatch()

    await big_client.download_backup(backup_id, tmp_path, progress=watch, buffer_size=64 * KiB)

    events = watch.of("database")
    assert_byte_accurate(events, DUMP_SIZE)
    restart = next(i for i, e in enumerate(events) if e.kind == "restart")
    assert events[restart].bytes_done == 0
    assert max(e.bytes_done for e in events[:restart]) > 0


# -- stalls --------------------------------------------------------------------------------


async def test_stalled_stream_is_abandoned_after_the_idle_timeout_and_resumed(
    big_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    stall_at = 400 * KiB
    big_sim.faults.stall_after(stall_at)  # until released: only the client's timeout helps
    try:
        async with OECClient(big_sim.api_key, big_sim.base_url, timeout=0.5) as client:
            result = await within(client.download_backup(backup_id, tmp_path))
    finally:
        big_sim.faults.release_stalls()

    requests = big_sim.storage_requests("database")
    assert len(requests) == 2
    assert requests[1].range is not None
    assert requests[1].status == 206
    assert result.database is not None
    assert result.database.verified
    assert 0 < result.database.bytes_transferred <= DUMP_SIZE
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")


# -- cancellation and changed objects ------------------------------------------------------


async def test_cancelled_download_leaves_a_resumable_partial(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    directory = work_folder_of(big_sim, tmp_path, backup_id)
    await interrupt_mid_dump(
        big_sim, big_client, backup_id, tmp_path, stall_at=512 * KiB, buffer_size=64 * KiB
    )
    part = directory / "dump.sql.part"
    assert part.exists()
    assert (directory / "dump.sql.part.json").exists()
    assert not (directory / "dump.sql").exists()
    kept = part.stat().st_size
    assert kept >= 256 * KiB
    assert part.read_bytes() == stored_bytes(big_sim, backup_id, "database")[:kept]
    big_sim.reset_records()

    result = await big_client.download_backup(backup_id, tmp_path)

    assert result.database is not None
    assert result.database.resumed_from == kept
    assert result.database.bytes_transferred == DUMP_SIZE - kept
    (request,) = big_sim.storage_requests("database")
    assert request.range == f"bytes={kept}-"
    assert request.headers.get("If-Range") == big_sim.object(backup_id, "database").etag
    assert request.status == 206
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(big_sim, backup_id, "database")


async def test_object_changed_between_runs_restarts_instead_of_mixing_bytes(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(big_sim)
    directory = work_folder_of(big_sim, tmp_path, backup_id)
    old = stored_bytes(big_sim, backup_id, "database")
    await interrupt_mid_dump(
        big_sim, big_client, backup_id, tmp_path, stall_at=512 * KiB, buffer_size=64 * KiB
    )
    assert (directory / "dump.sql.part").exists()
    assert (directory / "dump.sql.part.json").exists()
    kept = (directory / "dump.sql.part").stat().st_size
    assert kept > 0
    big_sim.change_object(backup_id)
    new = stored_bytes(big_sim, backup_id, "database")
    assert new != old
    big_sim.reset_records()
    watch = ProgressWatch()

    result = await big_client.download_backup(backup_id, tmp_path, progress=watch)

    (request,) = big_sim.storage_requests("database")
    assert request.range == f"bytes={kept}-"
    assert "If-Range" in request.headers
    assert request.status == 200  # If-Range failed: the whole new object came back
    assert "restart" in [e.kind for e in watch.of("database")]
    assert result.database is not None
    assert result.database.path.read_bytes() == new
    assert result.database.sha256 == big_sim.object(backup_id, "database").sha256
    assert result.verified
    assert_all_bytes_match(big_sim, result)


# -- kill -9 -------------------------------------------------------------------------------


@pytest.fixture
async def kill_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(seed=9, dump_size=KILL_DUMP_SIZE)


async def test_download_killed_with_sigkill_resumes_on_the_next_run(
    kill_sim: OECSimulator, tmp_path: Path
) -> None:
    sim = kill_sim
    backup_id = completed_backup(sim)
    sim.faults.stall_after(2 * MiB)  # the child is mid-file, deterministically
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        sim.base_url,
        sim.api_key,
        str(backup_id),
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    confirmed = 0
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while confirmed < 1 * MiB:
                line = await proc.stdout.readline()
                if not line:
                    _, err = await proc.communicate()
                    pytest.fail(f"child ended early: {err.decode(errors='replace')[-2000:]}")
                confirmed = int(line)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()
        sim.faults.release_stalls()
    assert proc.returncode == -9

    directory = work_folder_of(sim, tmp_path, backup_id)
    kept = (directory / "dump.sql.part").stat().st_size
    assert kept >= confirmed
    sim.reset_records()
    async with OECClient(sim.api_key, sim.base_url, timeout=5.0) as client:
        result = await within(client.download_backup(backup_id, tmp_path))  # lock not stale

    assert result.database is not None
    assert result.database.resumed_from == kept > 0
    assert result.database.bytes_transferred == KILL_DUMP_SIZE - kept
    assert result.database.bytes_transferred < KILL_DUMP_SIZE
    assert big_range(sim.storage_requests("database")[0].range) == kept
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert result.verified


def big_range(header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    assert match is not None, header
    return int(match.group(1))


# -- storage errors ------------------------------------------------------------------------


async def test_burst_of_5xx_from_storage_is_retried_to_success(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    rule = sim.faults.storage_errors(503, times=2, artifact="database")

    result = await client.download_backup(backup_id, tmp_path)

    assert rule.fired == 2
    assert [r.status for r in sim.storage_requests("database")] == [503, 503, 200]
    assert result.verified
    assert_all_bytes_match(sim, result)


async def test_5xx_with_retry_after_is_retried(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.storage_errors(503, times=1, artifact="filestore", retry_after=0.1)

    result = await client.download_backup(backup_id, tmp_path)

    assert [r.status for r in sim.storage_requests("filestore")] == [503, 200]
    assert result.verified


async def test_storage_errors_beyond_retries_fail_without_leaking_the_url(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.storage_errors(503, times=None, artifact="database")

    with pytest.raises(DownloadError) as caught:
        await client.download_backup(backup_id, tmp_path, retries=1)

    assert caught.value.artifact == "database"
    assert len(sim.storage_requests("database")) == 2  # the attempt and one retry
    text = f"{caught.value} {caught.value!r}"
    assert "503" in text
    for request in sim.storage_requests():
        assert request.path not in text
        for value in request.query.values():
            assert value not in text
    assert "?" not in text
    assert "X-Amz" not in text
    assert not (work_folder_of(sim, tmp_path, backup_id) / "dump.sql").exists()


async def test_storage_404_is_not_retried(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.storage_errors(404, times=None, artifact="database")

    with pytest.raises(StorageError) as caught:
        await client.download_backup(backup_id, tmp_path)

    assert caught.value.status == 404
    assert caught.value.artifact == "database"
    assert len(sim.storage_requests("database")) == 1


# -- complete partials left by an earlier run ----------------------------------------------


async def leave_a_complete_dump_partial(
    sim: OECSimulator, client: OECClient, backup_id: uuid.UUID, dest: Path
) -> Path:
    """strict=True without a manifest keeps the whole dump as ``.part``: a deterministic
    way to leave a complete partial behind (as a kill during verification would)."""
    sim.update_backup(backup_id, has_manifest=False, has_filestore=False)
    with pytest.raises(DownloadError):
        await client.download_backup(backup_id, dest, strict=True)
    part = work_folder_of(sim, dest, backup_id) / "dump.sql.part"
    assert part.read_bytes() == stored_bytes(sim, backup_id, "database")
    return part


async def test_complete_partial_of_a_changed_object_is_not_trusted(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    await leave_a_complete_dump_partial(sim, client, backup_id, tmp_path)
    sim.change_object(backup_id)
    sim.reset_records()

    result = await client.download_backup(backup_id, tmp_path)

    (request,) = sim.storage_requests("database")
    assert "If-Range" in request.headers
    assert request.status == 200
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_complete_partial_of_the_same_object_is_confirmed_with_one_byte(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    await leave_a_complete_dump_partial(sim, client, backup_id, tmp_path)
    size = sim.object(backup_id, "database").size
    sim.reset_records()

    result = await client.download_backup(backup_id, tmp_path)

    (request,) = sim.storage_requests("database")
    assert request.range == f"bytes={size - 1}-"
    assert request.status == 206
    assert result.database is not None
    assert result.database.bytes_transferred == 1
    assert result.database.resumed_from == size - 1
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
