"""Pruning real archives: what a policy deletes, and everything prune must never touch."""

from __future__ import annotations

import asyncio
import fcntl
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

import oec_async.archive._prune as prune_module
from oec_async import ConfigurationError, OECClient, RetentionPolicy, prune
from oec_async.archive import BackupFolder, archive_status, read_latest
from oec_async.testing import OECSimulator
from tests._support import download_all, download_lock_held, environment_with, flip_byte

POLICY = RetentionPolicy(last=3, daily=7, weekly=4, monthly=6)


def at(day: int, hour: int = 2) -> datetime:
    return datetime(2026, 5, day, hour, 0, tzinfo=UTC)


MONTH = [at(day) for day in range(1, 32)] + [at(31, 14), at(31, 9), at(20, 16), at(3, 12)]
KEPT = [at(31, 14), at(31, 9), at(31), *(at(d) for d in range(25, 31)), at(24), at(17), at(10)]
KEPT.append(at(1))  # the oldest, for the monthly rule


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (links not followed) -> (size, mtime_ns)."""
    found = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(base) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture
async def month(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> tuple[uuid.UUID, dict[datetime, Path]]:
    env = environment_with(archive_sim, MONTH, dump_size=2048, filestore_size=1024)
    return env, await download_all(archive_client, archive_sim, env, tmp_path / "dest")


async def test_a_month_of_nightly_backups_is_pruned_as_the_retention_table_says(
    month: tuple[uuid.UUID, dict[datetime, Path]], tmp_path: Path
) -> None:
    env, folders = month
    dest = tmp_path / "dest"

    result = prune(dest, POLICY, tz=UTC)

    assert sorted(result.kept) == sorted(folders[t] for t in KEPT)
    assert sorted(result.deleted) == sorted(folders[t] for t in MONTH if t not in KEPT)
    assert result.errors == ()
    assert result.ignored == []
    for moment, folder in folders.items():
        assert folder.exists() == (moment in KEPT), moment
    assert result.bytes_freed > 0
    assert read_latest(dest / str(env)) == folders[at(31, 14)]
    by_folder = {a.directory: a for a in result.actions}
    assert by_folder[folders[at(24)]].reasons == ("weekly 2026-W21",)
    assert by_folder[folders[at(23)]].reasons == ("no rule keeps it",)
    # Nothing but the backup folders and the pointer is left in the environment folder.
    assert {p.name for p in (dest / str(env)).iterdir()} == {
        *(folders[t].name for t in KEPT),
        "latest",
    }


async def test_a_dry_run_decides_the_same_and_deletes_nothing(
    month: tuple[uuid.UUID, dict[datetime, Path]], tmp_path: Path
) -> None:
    _, folders = month
    dest = tmp_path / "dest"
    before = tree(dest)

    result = prune(dest, POLICY, dry_run=True, tz=UTC)

    assert tree(dest) == before
    assert result.dry_run
    assert sorted(result.deleted) == sorted(folders[t] for t in MONTH if t not in KEPT)


async def test_the_newest_verified_backup_survives_any_policy(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    times = [at(d) for d in (1, 2, 3, 4)]
    env = environment_with(archive_sim, times)
    for backup in archive_sim.backups(env)[:2]:  # the two newest: no checksums
        archive_sim.update_backup(backup.id, manifest_variant="no_checksums")
    folders = {}
    for backup in archive_sim.backups(env):
        folders[backup.created_at] = (
            await archive_client.download_backup(backup.id, tmp_path)
        ).directory

    result = prune(tmp_path, RetentionPolicy(last=1), tz=UTC)

    kept = {a.directory: a.reasons for a in result.actions if a.action == "keep"}
    assert kept == {
        folders[at(4)]: ("last",),
        folders[at(2)]: ("newest verified backup: never deleted",),
    }
    assert sorted(result.deleted) == sorted([folders[at(3)], folders[at(1)]])
    assert read_latest(tmp_path / str(env)) == folders[at(2)]  # verified beats newer


async def test_a_backup_written_to_since_it_was_verified_no_longer_protects_the_archive(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    """A dump edited in place (a flipped byte, its modification time now later) is not the
    newest verified backup any more: status does not count it, ``latest`` leaves it, and
    prune keeps the older intact copy that a restore would need."""
    env = environment_with(archive_sim, [at(1), at(2)])
    folders = {}
    for backup in archive_sim.backups(env):
        folders[backup.created_at] = (
            await archive_client.download_backup(backup.id, tmp_path)
        ).directory
    dump = folders[at(2)] / "dump.sql"
    flip_byte(dump, 100, keep_time=True)
    os.utime(dump, ns=(dump.stat().st_atime_ns, dump.stat().st_mtime_ns + 10**9))  # later

    (state,) = [s for s in archive_status(tmp_path) if s.environment_id == env]
    result = prune(tmp_path, RetentionPolicy(last=1), tz=UTC)

    assert state.newest is not None
    assert state.newest.directory == folders[at(2)]
    assert not state.newest.intact
    assert state.newest_verified is not None
    assert state.newest_verified.directory == folders[at(1)]
    assert list(result.deleted) == []
    assert read_latest(tmp_path / str(env)) == folders[at(1)]


async def interrupted_download(
    sim: OECSimulator, client: OECClient, backup_id: uuid.UUID, dest: Path
) -> Path:
    """A real partial folder: a download cancelled halfway through the dump."""
    backup = sim.backup(backup_id)
    sim.faults.stall_after(8 * 1024, backup_id=backup.id)
    task = asyncio.create_task(client.download_backup(backup.id, dest))
    await asyncio.wait_for(sim.wait_for_bytes(backup.id, "database", 8 * 1024), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sim.faults.release_stalls()
    folder = dest / str(backup.environment_id) / f"{backup.id}.part"
    assert any(p.name.endswith(".part") for p in folder.iterdir())
    return folder


async def test_prune_never_touches_partial_foreign_locked_or_linked_folders_or_outside(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    env = environment_with(archive_sim, [at(1), at(2), at(3), at(4)], dump_size=64 * 1024)
    backups = archive_sim.backups(env)  # newest first
    newest, locked_one, plain_old = [
        (await archive_client.download_backup(b.id, dest)).directory for b in backups[:3]
    ]
    partial = await interrupted_download(archive_sim, archive_client, backups[3].id, dest)
    foreign = dest / str(env) / str(uuid.uuid4())
    foreign.mkdir()
    (foreign / "dump.sql").write_text("someone else's")
    # Complete backups elsewhere, reached from DEST only through links.
    other_env = archive_sim.environment_ids[1]
    elsewhere = await archive_client.download_backup(
        archive_sim.latest_completed(other_env).id, outside
    )
    (dest / str(env) / str(uuid.uuid4())).symlink_to(elsewhere.directory)
    (dest / str(other_env)).symlink_to(elsewhere.directory.parent)
    (plain_old / "escape").symlink_to(outside)  # inside a folder that will be deleted
    outside_before = tree(outside)

    async with download_lock_held(locked_one):
        result = prune(dest, RetentionPolicy(last=1), tz=UTC)

    assert result.deleted == [plain_old]
    assert not plain_old.exists()
    actions = {a.directory: (a.action, a.reasons) for a in result.actions}
    assert actions[newest] == ("keep", ("last",))
    assert actions[locked_one] == ("keep", ("locked: a download is running in it",))
    assert actions[partial][0] == "ignore"
    assert actions[foreign] == (
        "ignore",
        ("no completion record (partial or not a download of oec-async)",),
    )
    assert len(actions) == 5  # the linked folders were never even looked at
    for folder in (newest, locked_one, partial, foreign):
        assert folder.is_dir()
    assert tree(outside) == outside_before


async def test_a_download_that_starts_after_the_inventory_keeps_its_folder(
    archive_sim: OECSimulator,
    archive_client: OECClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = environment_with(archive_sim, [at(1), at(2)])
    old = (await download_all(archive_client, archive_sim, env, tmp_path))[at(1)]
    real_inventory = prune_module.environment_inventory  # type: ignore[attr-defined]
    held: list[int] = []

    def inventory_then_a_downloader_starts(
        directory: Path, environment_id: uuid.UUID
    ) -> list[BackupFolder]:
        folders = real_inventory(directory, environment_id)
        lock = old.parent / f".{old.name}.lock"
        held.append(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600))
        fcntl.flock(held[0], fcntl.LOCK_EX)  # what the downloader does, on its own descriptor
        return folders

    monkeypatch.setattr(prune_module, "environment_inventory", inventory_then_a_downloader_starts)
    try:
        result = prune(tmp_path, RetentionPolicy(last=1), tz=UTC)
    finally:
        os.close(held[0])

    assert old.is_dir()
    assert result.deleted == []
    assert [(a.action, a.reasons) for a in result.actions if a.directory == old] == [
        ("keep", ("locked: a download started in it",))
    ]
    assert result.errors == ()


async def test_the_next_prune_finishes_what_an_interrupted_one_left(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    env = environment_with(archive_sim, [at(1)])
    await download_all(archive_client, archive_sim, env, tmp_path)
    env_dir = tmp_path / str(env)
    leftover = env_dir / f".oec-prune.{uuid.uuid4()}"
    leftover.mkdir()
    (leftover / "dump.sql").write_text("half deleted")
    not_ours = env_dir / ".oec-prune.notes"
    not_ours.mkdir()
    target = tmp_path / "keep-me"
    target.mkdir()
    (target / "data").write_text("precious")
    (env_dir / f".oec-prune.{uuid.uuid4()}").symlink_to(target)

    prune(tmp_path, RetentionPolicy(last=1), tz=UTC)

    assert not leftover.exists()
    assert not_ours.is_dir()
    assert (target / "data").read_text() == "precious"


def test_a_policy_without_rules_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least one keep rule"):
        prune(tmp_path, RetentionPolicy())


async def test_prune_only_the_environments_asked_for(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    first = environment_with(archive_sim, [at(1), at(2)])
    second = environment_with(archive_sim, [at(1), at(2)])
    await download_all(archive_client, archive_sim, first, tmp_path)
    kept_whole = await download_all(archive_client, archive_sim, second, tmp_path)

    result = prune(tmp_path, RetentionPolicy(last=1), environment_ids=[first], tz=UTC)

    assert len(result.deleted) == 1
    assert all(folder.is_dir() for folder in kept_whole.values())
