"""Segmented (multi-connection) download of one large file, over the simulator.

The thresholds are lowered so that a 4 MiB dump is split into four 1 MiB ranges; faults
fire at absolute offsets, so which range breaks is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from oec_async import IntegrityError, OECClient
from oec_async.download import ProgressEvent
from oec_async.testing import OECSimulator, RequestRecord

KiB = 1024
MiB = 1024 * KiB
SIZE = 4 * MiB  # seg_sim's dump (tests/download/conftest.py)
SEGMENTED: dict[str, Any] = {
    "segments": 4,
    "segment_threshold": 1 * MiB,
    "min_segment_size": 256 * KiB,
    "buffer_size": 64 * KiB,
    "segment_probe": 0.0,  # split at once into four ranges
}
_CLOSED_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def latest(sim: OECSimulator) -> uuid.UUID:
    return sim.latest_completed(sim.environment_ids[0]).id


def dump_requests(sim: OECSimulator) -> list[RequestRecord]:
    return sim.storage_requests("database")


def closed_ranges(sim: OECSimulator) -> list[tuple[int, int]]:
    found = []
    for record in dump_requests(sim):
        match = _CLOSED_RANGE.match(record.range or "")
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return found


def dump_folder(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> Path:
    """The work folder, where a download's partials are until it is complete."""
    return dest / str(sim.backup(backup_id).environment_id) / f"{backup_id}.part"


async def test_large_file_is_fetched_over_several_ranged_connections(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)

    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    # Nothing fetched twice (beyond what was in flight when a range was cut short).
    assert SIZE <= result.database.bytes_transferred < SIZE + 1 * MiB
    starts = sorted(start for start, _ in closed_ranges(seg_sim))
    # The first response, plus ranged requests for the pieces after it, handed out in
    # file order (512 KiB pieces here: twice min_segment_size).
    assert len(starts) >= 3
    assert len(set(starts)) == len(starts)
    assert starts[0] > 0
    assert starts[-1] < SIZE
    assert all(r.headers.get("If-Range") for r in dump_requests(seg_sim) if r.range)
    assert seg_sim.storage_peak_in_flight >= 3  # dump ranges (and the other files) at once
    complete = dump_folder(seg_sim, tmp_path, backup_id).with_name(str(backup_id))
    assert complete.is_dir()
    assert not list(complete.glob("*.part*"))
    assert not dump_folder(seg_sim, tmp_path, backup_id).exists()


async def test_a_dropped_segment_resumes_from_its_own_position(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    drop_at = 2 * MiB + 300 * KiB  # inside the third range
    seg_sim.faults.drop_after(drop_at)
    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)

    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    resumed = [start for start, _ in closed_ranges(seg_sim) if 2 * MiB < start <= drop_at]
    assert resumed, closed_ranges(seg_sim)  # the range went on from where it broke...
    assert result.database.bytes_transferred < SIZE + 256 * KiB  # ...not from its start


async def test_a_stalled_segment_is_retried_on_its_own(
    seg_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    seg_sim.faults.stall_after(3 * MiB + 100 * KiB)  # the last range goes silent
    try:
        async with OECClient(seg_sim.api_key, seg_sim.base_url, timeout=0.5) as client:
            result = await client.download_backup(backup_id, tmp_path, **SEGMENTED)
    finally:
        seg_sim.faults.release_stalls()

    assert result.database is not None
    assert result.database.verified
    later = [start for start, _ in closed_ranges(seg_sim) if start > 3 * MiB]
    assert later  # re-requested from inside the stalled range


async def test_cancelled_segmented_download_resumes_every_range_on_the_next_run(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    seg_sim.faults.stall_after(1 * MiB + 512 * KiB)  # the second range stops halfway
    seen: list[ProgressEvent] = []
    task = asyncio.create_task(
        seg_client.download_backup(backup_id, tmp_path, progress=seen.append, **SEGMENTED)
    )
    try:
        await asyncio.wait_for(
            seg_sim.wait_for_bytes(backup_id, "database", 3 * MiB + 512 * KiB), 10
        )
        await asyncio.sleep(0)  # let the writes of what arrived complete
        while not any(e.artifact == "database" and e.bytes_done >= 3 * MiB for e in seen):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        seg_sim.faults.release_stalls()

    folder = dump_folder(seg_sim, tmp_path, backup_id)
    sidecar = json.loads((folder / "dump.sql.part.json").read_text())
    assert sidecar["segments"] is not None
    assert not (folder / "dump.sql").exists()
    on_disk = sum(position - start for start, _, position in sidecar["segments"])
    assert on_disk >= 3 * MiB

    seg_sim.reset_records()
    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)
    assert result.database is not None
    assert result.database.verified
    assert result.database.resumed_from == on_disk
    assert result.database.bytes_transferred == SIZE - on_disk
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    assert all(r.range is not None for r in dump_requests(seg_sim))  # ranges only


async def test_storage_ignoring_range_falls_back_to_a_single_stream(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    seg_sim.faults.ignore_range(artifact="database")
    seen: list[ProgressEvent] = []
    result = await seg_client.download_backup(
        backup_id, tmp_path, progress=seen.append, **SEGMENTED
    )

    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    assert any(e.artifact == "database" and e.kind == "restart" for e in seen)
    last = dump_requests(seg_sim)[-1]
    assert last.range is None  # the final transfer was one plain stream
    assert last.status == 200
    assert last.bytes_sent == SIZE


async def test_corruption_in_a_middle_segment_is_detected_and_refetched(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    rule = seg_sim.faults.corrupt(2 * MiB + 12345)  # inside the third range, once
    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)

    assert rule.fired == 1
    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    assert result.database.bytes_transferred >= 2 * SIZE  # one whole fresh fetch


async def test_corruption_in_a_middle_segment_every_time_leaves_no_final_file(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    seg_sim.faults.corrupt(2 * MiB + 12345, times=None)
    with pytest.raises(IntegrityError):
        await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)

    folder = dump_folder(seg_sim, tmp_path, backup_id)
    assert not (folder / "dump.sql").exists()
    assert not (folder / "dump.sql.part").exists()


async def test_object_changed_between_runs_restarts_a_segmented_partial(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    seg_sim.faults.stall_after(1 * MiB + 256 * KiB)
    task = asyncio.create_task(seg_client.download_backup(backup_id, tmp_path, **SEGMENTED))
    try:
        await asyncio.wait_for(seg_sim.wait_for_bytes(backup_id, "database", 3 * MiB), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        seg_sim.faults.release_stalls()
    folder = dump_folder(seg_sim, tmp_path, backup_id)
    assert json.loads((folder / "dump.sql.part.json").read_text())["segments"]

    seg_sim.change_object(backup_id)
    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)
    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )


@pytest.mark.parametrize(
    ("max_connections", "fewest", "most"),
    # The global bound holds; the per-host bound (2) does not count a file's own ranges:
    # eight segments are eight connections of the file's own, as aria2c -x8 (beside
    # them, the manifest and filestore hold at most the host's two slots).
    [(2, 1, 2), (16, 3, 10)],
    ids=["global-bound", "own-budget-beyond-the-per-host-bound"],
)
async def test_segments_use_their_own_connections_within_the_clients_global_bound(
    seg_sim: OECSimulator, tmp_path: Path, max_connections: int, fewest: int, most: int
) -> None:
    backup_id = latest(seg_sim)
    async with OECClient(
        seg_sim.api_key,
        seg_sim.base_url,
        max_connections=max_connections,
        max_connections_per_host=2,
    ) as client:
        options = {**SEGMENTED, "segments": 8, "min_segment_size": 128 * KiB}
        result = await client.download_backup(backup_id, tmp_path, **options)

    assert result.database is not None
    assert result.database.verified
    assert fewest <= seg_sim.storage_peak_in_flight <= most


async def test_small_files_are_never_segmented(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    backup_id = latest(seg_sim)
    result = await seg_client.download_backup(
        backup_id, tmp_path, **{**SEGMENTED, "segment_threshold": SIZE + 1}
    )
    assert result.database is not None
    assert result.database.verified
    assert [r.range for r in dump_requests(seg_sim)] == [None]


async def test_a_fast_connection_is_not_split(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    seg_sim.configure(bandwidth=None)  # loopback at full speed: 4 MiB well within the probe
    backup_id = latest(seg_sim)
    options = {**SEGMENTED, "segment_probe": 0.15}
    result = await seg_client.download_backup(backup_id, tmp_path, **options)

    assert result.database is not None
    assert result.database.verified
    assert [r.range for r in dump_requests(seg_sim)] == [None]


async def test_a_slow_connection_is_split_after_the_probe(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    seg_sim.configure(bandwidth=4 * MiB)  # a per-connection cap, as object stores have
    backup_id = latest(seg_sim)
    options = {**SEGMENTED, "segment_probe": 0.15}
    result = await seg_client.download_backup(backup_id, tmp_path, **options)

    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes() == seg_sim.object(backup_id, "database").path.read_bytes()
    )
    assert dump_requests(seg_sim)[0].range is None  # began as one plain stream...
    assert len(closed_ranges(seg_sim)) >= 2  # ...and grew once it proved slow
