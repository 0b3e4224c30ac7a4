"""kill -9 at random moments, again and again (the short version; the soak runs more):
after every restart, every file under a final name is byte-identical to the stored
object, with a sizes-only manifest that could not catch a wrong one."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from oec_async.testing import OECSimulator, SimulatorFactory
from tests._kill_loop import kill_loop
from tests._support import completed_backup, folder_of, stored_bytes

KiB = 1024
MiB = 1024 * KiB
MODES: dict[str, dict[str, Any]] = {
    "one-stream": {"segments": 1, "buffer_size": 16 * KiB},
    "segmented": {
        "segments": 4,
        "segment_threshold": 1 * MiB,
        "min_segment_size": 256 * KiB,
        "segment_probe": 0.0,
        "buffer_size": 16 * KiB,
    },
}


@pytest.fixture
async def slow_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(
        seed=5150, dump_size=3 * MiB, filestore_size=512 * KiB, bandwidth=6 * MiB
    )


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_every_final_file_is_the_stored_object_after_every_kill(
    slow_sim: OECSimulator, tmp_path: Path, mode: str
) -> None:
    backup_id = completed_backup(slow_sim)
    slow_sim.update_backup(backup_id, manifest_variant="no_checksums")

    report = await kill_loop(
        slow_sim,
        backup_id,
        tmp_path,
        options=MODES[mode],
        kills=6,
        rng=random.Random(f"kill-loop-{mode}"),
    )

    assert report.problems == []
    assert report.completed
    assert report.kills >= 5  # kills land mid-transfer (the child rarely wins the race)
    folder = folder_of(slow_sim, tmp_path, backup_id)
    for artifact, name in slow_sim.backup(backup_id).file_names.items():
        assert (folder / name).read_bytes() == stored_bytes(slow_sim, backup_id, artifact)
