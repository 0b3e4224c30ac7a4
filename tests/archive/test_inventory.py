"""What the inventory and ``archive_status`` see in a real archive, and what they ignore."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oec_async import OECClient, archive_status, inventory
from oec_async.testing import OECSimulator
from tests._support import download_all, download_lock_held, environment_with

NOW = datetime.now(UTC).replace(microsecond=0)


async def test_folders_are_reported_with_state_size_times_and_verification(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    times = [NOW - timedelta(days=2), NOW - timedelta(days=1)]
    env = environment_with(archive_sim, times)
    folders = await download_all(archive_client, archive_sim, env, tmp_path)

    found = inventory(tmp_path)

    assert [f.directory for f in found] == [folders[t] for t in times]  # oldest first
    for folder, created in zip(found, times, strict=True):
        assert folder.state == "complete"
        assert folder.complete
        assert folder.intact
        assert folder.verified
        assert not folder.locked
        assert folder.created_at == created
        assert folder.completed_at is not None
        assert folder.completed_at > created
        assert folder.size == sum(
            p.stat().st_size for p in folder.directory.iterdir() if not p.name.startswith(".")
        )
        age = folder.age(NOW)
        assert age is not None
        assert abs(age - (NOW - created)) < timedelta(seconds=1)


async def test_a_locked_folder_is_seen_locked_and_the_probe_takes_nothing(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    env = environment_with(archive_sim, [NOW])
    [folder] = (await download_all(archive_client, archive_sim, env, tmp_path)).values()

    async with download_lock_held(folder):
        [seen] = inventory(tmp_path)
    [after] = inventory(tmp_path)
    # The probe did not keep the lock: a downloader can take it at once.
    async with download_lock_held(folder):
        pass

    assert seen.locked
    assert not after.locked


async def test_a_folder_without_a_lock_file_gets_none_created(tmp_path: Path) -> None:
    folder = (
        tmp_path / "7f1c4b9e-8a55-4d3e-9d1a-3b7a2c9e0f11" / "2b7d5e41-0c4e-4f55-8a37-6d7c1e2f3a44"
    )
    folder.mkdir(parents=True)
    (folder / ".oec-download.json").write_text("{}")  # not a valid record: incomplete

    [seen] = inventory(tmp_path)

    assert seen.state == "incomplete"
    assert seen.created_at is None
    assert not (folder / ".oec-download.lock").exists()


async def test_links_foreign_names_and_files_are_ignored(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    env = environment_with(archive_sim, [NOW])
    [folder] = (await download_all(archive_client, archive_sim, env, tmp_path)).values()
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.txt").write_text("my backups")
    (folder.parent / "latest").symlink_to(folder.name)
    (folder.parent / "old-copy").mkdir()
    (folder.parent / folder.name.upper()).mkdir()  # a UUID, but not the downloader's form
    os.symlink(folder, folder.parent / "11111111-2222-4333-8444-555555555555")

    assert [f.directory for f in inventory(tmp_path)] == [folder]


async def test_status_gives_each_environment_its_newest_and_newest_verified_backup(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    old, new = NOW - timedelta(days=3), NOW - timedelta(hours=2)
    env = environment_with(archive_sim, [old, new])
    folders = await download_all(archive_client, archive_sim, env, tmp_path)
    (folders[new] / "dump.sql").unlink()  # damaged: complete, no longer intact
    partial = folders[new].parent / "5b0b9a57-2f8e-4d7a-9c4e-1f2e3d4c5b6a"
    partial.mkdir()
    (partial / "dump.sql.part").write_bytes(b"x" * 10)

    [status] = archive_status(tmp_path)

    assert status.environment_id == env
    assert status.newest is not None
    assert status.newest.directory == folders[new]
    assert status.newest_verified is not None
    assert status.newest_verified.directory == folders[old]
    assert (status.complete, status.incomplete) == (2, 1)
    assert status.stale(timedelta(days=4), NOW) is False
    assert status.stale(timedelta(days=2), NOW) is True
