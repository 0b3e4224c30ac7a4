"""Bulk pull (``pull_latest``) against the simulator, over real loopback sockets."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Protocol

import pytest

from oec_async import (
    BadRequestError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    OECClient,
)
from oec_async.download import BatchProgress, ProgressEvent, PullResult
from oec_async.errors import NoCompletedBackupError
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory, SimulatorSettings

KiB = 1024
MiB = 1024 * KiB


class SmallWorld(Protocol):
    async def __call__(
        self,
        *,
        environments: int,
        dump_size: int = ...,
        filestore_size: int = ...,
        timeout: float = ...,
        settings: SimulatorSettings | None = ...,
        **client_kwargs: Any,
    ) -> tuple[OECSimulator, OECClient]: ...


@pytest.fixture
def simulator_and_client(
    oec_simulator_factory: SimulatorFactory, oec_client_factory: ClientFactory
) -> SmallWorld:
    """A small-dump simulator and a client pointed at it (both closed after the test)."""

    async def make(
        *,
        environments: int,
        dump_size: int = 64 * KiB,
        filestore_size: int = 8 * KiB,
        timeout: float = 5.0,
        settings: SimulatorSettings | None = None,
        **client_kwargs: Any,
    ) -> tuple[OECSimulator, OECClient]:
        sim = await oec_simulator_factory(
            seed=4321,
            environments=environments,
            backups_per_environment=3,  # running, completed, completed: latest is index 1
            dump_size=dump_size,
            filestore_size=filestore_size,
            settings=settings,
        )
        return sim, await oec_client_factory(sim, timeout=timeout, **client_kwargs)

    return make


def assert_same_bytes_as_storage(
    sim: OECSimulator, result: PullResult, *, fetched: bool | None = True
) -> None:
    """The result is the environment's newest completed backup, verified, byte for byte.

    ``fetched``: True if this call must have transferred it, False if it must have found
    it complete from an earlier run, None if either will do."""
    assert result.ok, result.error
    download = result.download
    assert download is not None
    latest = sim.latest_completed(result.environment_id)
    assert result.backup_id == latest.id == download.backup_id
    assert download.verified
    if fetched is not None:
        assert download.skipped is not fetched
    for file in download.files:
        stored = sim.object(latest.id, file.artifact)
        assert file.path.read_bytes() == stored.path.read_bytes(), file.artifact
        assert file.sha256 == stored.sha256


def part_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.name.endswith((".part", ".part.json")))


# -- many environments, failures isolated ------------------------------------------------


async def test_bulk_pull_of_many_environments_isolates_each_kind_of_failure(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
) -> None:
    sim, client = await simulator_and_client(environments=32)
    good = sim.environment_ids
    no_completed = sim.add_environment(statuses=["failed", "running"])
    unknown = uuid.uuid4()
    corrupt, refused = good[5], good[9]
    corrupt_backup = sim.latest_completed(corrupt).id
    refused_backup = sim.latest_completed(refused).id
    sim.faults.corrupt(1000, backup_id=corrupt_backup, times=None)
    sim.faults.api_errors(400, path_contains=f"/backups/{refused_backup}/download", times=None)
    env_ids = [*good[:3], no_completed, *good[3:20], unknown, *good[20:]]

    results = await client.pull_latest(env_ids, tmp_path, concurrency=8)

    assert [r.environment_id for r in results] == env_ids
    by_env = {r.environment_id: r for r in results}

    missing = by_env[no_completed]
    assert isinstance(missing.error, NoCompletedBackupError)
    assert (missing.backup_id, missing.download) == (None, None)

    stranger = by_env[unknown]
    assert isinstance(stranger.error, NotFoundError)
    assert (stranger.backup_id, stranger.download) == (None, None)

    broken = by_env[corrupt]
    assert isinstance(broken.error, IntegrityError)
    assert broken.backup_id == corrupt_backup
    assert broken.download is None
    broken_dir = tmp_path / str(corrupt) / str(corrupt_backup)
    assert not (broken_dir / "dump.sql").exists()  # nothing unverified under a final name

    not_completed = by_env[refused]
    assert isinstance(not_completed.error, BadRequestError)
    assert not_completed.backup_id == refused_backup
    assert not_completed.download is None

    failed = {no_completed, unknown, corrupt, refused}
    for result in results:
        if result.environment_id not in failed:
            assert_same_bytes_as_storage(sim, result)
    assert sum(r.ok for r in results) == len(env_ids) - len(failed)


async def test_duplicate_environment_ids_are_pulled_once_in_order_of_first_appearance(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
) -> None:
    sim, client = await simulator_and_client(environments=3)
    a, b, c = sim.environment_ids

    results = await client.pull_latest([a, str(b), a, c, b, str(a).upper()], tmp_path)

    assert [r.environment_id for r in results] == [a, b, c]
    for env in (a, b, c):
        assert len(sim.api_requests(f"/environments/{env}/backups")) == 1
        assert len(sim.api_requests(f"/backups/{sim.latest_completed(env).id}/download")) == 1
    for result in results:
        assert_same_bytes_as_storage(sim, result)


# -- bounds: connections and the rate limit ----------------------------------------------


@pytest.mark.parametrize(
    ("max_connections", "max_connections_per_host", "bound"),
    [(4, 8, 4), (16, 2, 2)],
    ids=["total-bound", "per-host-bound"],
)
async def test_concurrent_storage_connections_stay_within_the_client_bound(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
    max_connections: int,
    max_connections_per_host: int,
    bound: int,
) -> None:
    # 256 KiB at 2 MiB/s per response: each dump streams for ~125 ms, so transfers of
    # eight environments at once overlap unless the connector holds them back.
    sim, client = await simulator_and_client(
        environments=8,
        dump_size=256 * KiB,
        settings=SimulatorSettings(bandwidth=2 * MiB),
        max_connections=max_connections,
        max_connections_per_host=max_connections_per_host,
    )
    results = await client.pull_latest(sim.environment_ids, tmp_path, concurrency=8)

    assert all(r.ok for r in results), [r.error for r in results]
    assert 1 < sim.storage_peak_in_flight <= bound


async def test_client_pacing_keeps_a_burst_of_environments_under_the_server_rate_limit(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
) -> None:
    # The server allows 10 requests per 0.5 s bucket; the client paces itself to 8 per
    # 0.5 s (a margin, as the default 100/min has under the platform's 120/min).
    sim, client = await simulator_and_client(
        environments=12,
        dump_size=16 * KiB,
        settings=SimulatorSettings(read_limit=10, rate_window=0.5),
        requests_per_minute=8,
        rate_limit_period=0.5,
    )
    results = await client.pull_latest(sim.environment_ids, tmp_path, concurrency=12)

    assert all(r.ok for r in results), [r.error for r in results]
    assert sim.rate_limited == 0
    assert len(sim.api_requests()) == 2 * 12  # one list + one URL request each, no retry


async def test_injected_429s_are_retried_and_pause_every_caller(
    simulator_and_client: SmallWorld, tmp_path: Path
) -> None:
    sim, client = await simulator_and_client(environments=12, dump_size=16 * KiB)
    rule = sim.faults.rate_limit(times=3, retry_after=0.3)

    results = await client.pull_latest(sim.environment_ids, tmp_path, concurrency=4)

    assert all(r.ok for r in results), [r.error for r in results]
    assert rule.fired == 3
    assert sim.rate_limited == 3
    api = sim.api_requests()
    assert len(api) == 2 * 12 + 3
    # Retry-After pauses the shared limiter: the environments that were not refused wait
    # too. Without the pause, the other environments' calls (a dozen or more) would reach
    # the server in these 0.3 s; with it, only a straggler that was already past the
    # limiter when the 429s came back may.
    refused_at = max(r.at for r in api if r.status == 429)
    during_pause = [r.path for r in api if refused_at + 0.02 < r.at < refused_at + 0.28]
    assert len(during_pause) <= 2, during_pause
    assert max(r.at for r in api) >= refused_at + 0.3


# -- re-running, cancelling, resuming -----------------------------------------------------


async def test_second_pull_into_the_same_folder_transfers_nothing(
    tmp_path: Path, sim: OECSimulator, client: OECClient
) -> None:
    envs = sim.environment_ids
    first = await client.pull_latest(envs, tmp_path)
    assert all(r.ok for r in first), [r.error for r in first]
    storage_before = len(sim.storage_requests())
    url_requests_before = len(sim.api_requests("/download"))

    second = await client.pull_latest(envs, tmp_path)

    assert [r.environment_id for r in second] == envs
    for before, after in zip(first, second, strict=True):
        assert after.ok, after.error
        assert after.download is not None
        assert before.download is not None
        assert after.download.skipped
        assert after.download.bytes_transferred == 0
        assert after.download.verified
        assert [f.sha256 for f in after.download.files] == [f.sha256 for f in before.download.files]
    assert len(sim.storage_requests()) == storage_before
    assert len(sim.api_requests("/download")) == url_requests_before


async def test_cancelled_pull_leaves_resumable_partials_and_the_next_pull_resumes(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
) -> None:
    # The dump's first 256 KiB arrive, then (after a 0.2 s pause, so the client sees two
    # separate chunks and reports bytes on disk) the rest up to 640 KiB, then storage
    # stalls with the connection open until released. The long client timeout keeps the
    # stall from being detected and resumed inside the test.
    stall_at = 640 * KiB
    sim, client = await simulator_and_client(environments=3, dump_size=MiB, timeout=30.0)
    envs = sim.environment_ids
    target = sim.latest_completed(envs[0])
    sim.faults.stall_after(256 * KiB, backup_id=target.id, seconds=0.2)
    sim.faults.stall_after(stall_at, backup_id=target.id)
    on_disk = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        ours = event.backup_id == target.id and event.artifact == "database"
        if ours and event.kind == "progress" and event.bytes_done > 0:
            on_disk.set()

    task = asyncio.create_task(
        client.pull_latest(envs, tmp_path, progress=watch, buffer_size=16 * KiB)
    )
    try:
        await asyncio.wait_for(sim.wait_for_bytes(target.id, "database", stall_at), 10)
        await asyncio.wait_for(on_disk.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        sim.faults.release_stalls()

    folder = tmp_path / str(target.environment_id) / str(target.id)
    part = folder / "dump.sql.part"
    assert part.is_file()
    assert (folder / "dump.sql.part.json").is_file()
    assert not (folder / "dump.sql").exists()
    kept = part.stat().st_size
    assert 0 < kept <= stall_at

    results = await client.pull_latest(envs, tmp_path)

    assert_same_bytes_as_storage(sim, results[0])
    for result in results[1:]:  # finished or not before the cancellation
        assert_same_bytes_as_storage(sim, result, fetched=None)
    resumed = results[0].download
    assert resumed is not None
    assert resumed.database is not None
    assert resumed.database.resumed_from == kept
    assert resumed.database.bytes_transferred == resumed.database.size - kept
    (ranged,) = [r for r in sim.storage_requests("database", target.id) if r.range is not None]
    assert ranged.range == f"bytes={kept}-"
    assert part_files(tmp_path) == []


# -- batch progress ----------------------------------------------------------------------


async def test_batch_progress_reports_environments_and_bytes_to_the_end(
    simulator_and_client: SmallWorld,
    tmp_path: Path,
) -> None:
    snapshots: list[BatchProgress] = []
    sim, client = await simulator_and_client(environments=5)
    envs = sim.environment_ids
    no_completed = sim.add_environment(statuses=["failed", "running"])
    sim.faults.corrupt(10, backup_id=sim.latest_completed(envs[2]).id, times=None)
    env_ids = [*envs, no_completed, uuid.uuid4()]

    results = await client.pull_latest(
        env_ids, tmp_path, concurrency=3, batch_progress=snapshots.append
    )

    assert [r.ok for r in results] == [True, True, False, True, True, False, False]
    assert snapshots
    done = [s.environments_done for s in snapshots]
    assert done == sorted(done)
    assert all(s.environments_total == len(env_ids) for s in snapshots)
    assert all(s.bytes_done <= s.bytes_total for s in snapshots)
    assert all(0 <= s.environments_in_flight <= 3 for s in snapshots)
    last = snapshots[-1]
    assert last.environments_done == last.environments_total == 7
    assert last.environments_failed == 3
    assert last.environments_in_flight == 0
    pulled = sum(r.download.size for r in results if r.download is not None)
    assert pulled <= last.bytes_done <= last.bytes_total
    assert last.bytes_transferred >= pulled
    assert last.throughput > 0


# -- bad input, refused before any request -----------------------------------------------


async def test_a_malformed_environment_id_is_refused_before_any_request(
    tmp_path: Path, sim: OECSimulator, client: OECClient
) -> None:
    with pytest.raises(ConfigurationError, match="environment id"):
        await client.pull_latest([sim.environment_ids[0], "../../etc"], tmp_path)

    assert len(sim.requests) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("concurrency", [0, -1, True])
async def test_concurrency_below_one_is_refused(
    tmp_path: Path, sim: OECSimulator, client: OECClient, concurrency: int
) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        await client.pull_latest(sim.environment_ids, tmp_path, concurrency=concurrency)

    assert len(sim.requests) == 0


async def test_a_single_id_string_instead_of_a_list_is_refused(
    tmp_path: Path, sim: OECSimulator, client: OECClient
) -> None:
    # A str is iterable: without the check it would be 36 one-character "ids".
    with pytest.raises(ConfigurationError, match="iterable"):
        await client.pull_latest(str(sim.environment_ids[0]), tmp_path)

    assert len(sim.requests) == 0


async def test_an_unknown_download_option_is_refused_before_any_request(
    tmp_path: Path, sim: OECSimulator, client: OECClient
) -> None:
    with pytest.raises(ConfigurationError, match="unknown download option"):
        await client.pull_latest(sim.environment_ids, tmp_path, strcit=True)

    assert len(sim.requests) == 0
