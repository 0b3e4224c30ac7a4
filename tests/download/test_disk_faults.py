"""Disk faults: a read-only destination, and a disk that refuses to grow mid-write.

ENOSPC on a real small tmpfs is in test_download_safety.py (where the machine lets the
tests mount one); here the same failure is produced without privileges, with a real
kernel limit: RLIMIT_FSIZE makes write() fail with EFBIG past a size, in a child process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oec_async import DownloadError, OECClient
from oec_async.testing import OECSimulator, SimulatorFactory
from tests._support import mounted_tmpfs

KiB = 1024
MiB = 1024 * KiB
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def disk_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(seed=99, dump_size=2 * MiB)


def latest(sim: OECSimulator) -> uuid.UUID:
    return sim.latest_completed(sim.environment_ids[0]).id


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (root ignores permission bits, not a read-only mount)."""
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as target:
        yield target


async def test_read_only_destination_is_a_clear_download_error(
    disk_sim: OECSimulator, read_only_dir: Path
) -> None:
    async with OECClient(disk_sim.api_key, disk_sim.base_url) as client:
        with pytest.raises(DownloadError) as caught:
            await client.download_backup(latest(disk_sim), read_only_dir)

    assert "Read-only file system" in str(caught.value)
    assert str(read_only_dir) in str(caught.value)
    assert list(read_only_dir.iterdir()) == []
    assert disk_sim.storage_requests() == []  # refused before any transfer


async def test_destination_that_is_a_file_is_a_clear_download_error(
    disk_sim: OECSimulator, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "backups"
    not_a_folder.write_text("oops")
    async with OECClient(disk_sim.api_key, disk_sim.base_url) as client:
        with pytest.raises(DownloadError, match="cannot write in"):
            await client.download_backup(latest(disk_sim), not_a_folder)


_LIMITED_CHILD = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from oec_async import OECClient, InsufficientSpaceError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[5]), int(sys.argv[5])))

    async def main() -> None:
        async with OECClient(sys.argv[2], sys.argv[1]) as client:
            try:
                await client.download_backup(sys.argv[3], sys.argv[4], buffer_size=65536)
            except InsufficientSpaceError as exc:
                print("InsufficientSpaceError", exc)
                return
        print("finished")

    asyncio.run(main())
    """
)


async def test_disk_refusing_to_grow_mid_write_keeps_the_partial_and_resumes(
    disk_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = latest(disk_sim)
    limit = 700 * KiB  # the dump is 2 MiB: writing it fails a third of the way
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LIMITED_CHILD,
        disk_sim.base_url,
        disk_sim.api_key,
        str(backup_id),
        str(tmp_path),
        str(limit),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()

    assert proc.returncode == 0, text
    assert text.startswith("InsufficientSpaceError"), text
    assert "Traceback" not in text
    env = disk_sim.backup(backup_id).environment_id
    folder = tmp_path / str(env) / str(backup_id)
    part = folder / "dump.sql.part"
    kept = part.stat().st_size
    assert 0 < kept <= limit
    assert not (folder / "dump.sql").exists()
    stored = disk_sim.object(backup_id, "database").path.read_bytes()
    assert part.read_bytes() == stored[:kept]  # what reached the disk is good data

    async with OECClient(disk_sim.api_key, disk_sim.base_url) as client:
        result = await client.download_backup(backup_id, tmp_path)  # now there is room

    assert result.database is not None
    assert result.database.resumed_from == kept
    assert result.database.path.read_bytes() == stored
    assert result.verified
