"""Safety of a download: disk space, the folder lock, expiring URLs, and secrets that
must never reach storage."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oec_async import (
    DownloadLockedError,
    InsufficientSpaceError,
    OECClient,
    StorageError,
)
from oec_async.download import BackupDownload, ProgressEvent
from oec_async.download import backup as backup_module
from oec_async.download._folder import Folder
from oec_async.download._layout import lock_name
from oec_async.download._lock import FolderLock
from oec_async.testing import OECSimulator, RequestRecord
from tests._support import (
    assert_all_bytes_match,
    completed_backup,
    mounted_tmpfs,
    stored_bytes,
    within,
    work_folder_of,
)

KiB = 1024
MiB = 1024 * KiB
DUMP_SIZE = 1 * MiB  # big_sim's dump (tests/download/conftest.py)


@pytest.fixture
def big_sim_seed() -> int:
    """This module's ``big_sim`` (tests/download/conftest.py) has its own world."""
    return 777


async def settle(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def credential(record: RequestRecord) -> str:
    """Which signed URL a storage request used (the simulator numbers each one)."""
    return record.query["X-Amz-Credential"]


# -- disk space ----------------------------------------------------------------------------


async def test_insufficient_space_is_refused_before_any_byte_is_written(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    directory = work_folder_of(sim, tmp_path, backup_id)
    # A reserve beyond what is free (with a margin: other processes share this disk).
    reserve = shutil.disk_usage(tmp_path).free + (1 << 30)

    with pytest.raises(InsufficientSpaceError) as caught:
        await client.download_backup(backup_id, tmp_path, min_free_space=reserve)

    assert caught.value.needed is not None

    assert caught.value.needed > 0
    assert caught.value.available == 0
    assert "free" in str(caught.value)
    part = directory / "dump.sql.part"
    assert not part.exists() or part.stat().st_size == 0
    assert not (directory / "dump.sql").exists()

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    assert_all_bytes_match(sim, result)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, or a skip when this machine does not let the tests mount one."""
    with mounted_tmpfs(tmp_path / "small", "size=2m") as target:
        yield target


def fill_disk(path: Path) -> None:
    """Write until the file system refuses (ENOSPC)."""
    block = b"\0" * (64 * KiB)
    with path.open("wb", buffering=0) as handle:
        while True:
            try:
                handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


async def test_disk_filling_up_mid_write_keeps_the_partial_for_a_resume(
    big_sim: OECSimulator, big_client: OECClient, small_disk: Path
) -> None:
    sim = big_sim
    backup_id = completed_backup(sim)
    directory = work_folder_of(sim, small_disk, backup_id)
    stall_at = 512 * KiB
    sim.faults.stall_after(stall_at)
    ready = asyncio.get_running_loop().create_future()
    done: set[str] = set()
    written = 0

    def watch(event: ProgressEvent) -> None:
        nonlocal written
        if event.kind == "done":
            done.add(event.artifact)
        if event.artifact == "database":
            written = max(written, event.bytes_done)
        if {"manifest", "filestore"} <= done and written >= stall_at // 2 and not ready.done():
            ready.set_result(None)

    task = asyncio.create_task(
        big_client.download_backup(backup_id, small_disk, progress=watch, buffer_size=64 * KiB)
    )
    try:
        await within(ready)  # the space check passed, and the dump is half on disk
        fill_disk(small_disk / "filler")
        sim.faults.release_stalls()
        with pytest.raises(InsufficientSpaceError) as caught:
            await within(task)
    finally:
        sim.faults.release_stalls()
        await settle(task)

    assert caught.value.artifact == "database"
    assert "filled up" in str(caught.value)
    part = directory / "dump.sql.part"
    kept = part.stat().st_size
    assert kept >= stall_at // 2
    assert part.read_bytes() == stored_bytes(sim, backup_id, "database")[:kept]
    assert (directory / "dump.sql.part.json").exists()
    assert not (directory / "dump.sql").exists()

    (small_disk / "filler").unlink()
    sim.reset_records()
    result = await big_client.download_backup(backup_id, small_disk)

    assert result.database is not None
    assert result.database.resumed_from == kept
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


# -- the folder lock -----------------------------------------------------------------------


async def start_stalled_download(
    sim: OECSimulator, client: OECClient, backup_id: uuid.UUID, dest: Path
) -> asyncio.Task[BackupDownload]:
    """A download that holds the folder's lock, stalled mid-dump until released."""
    size = sim.object(backup_id, "database").size
    sim.faults.stall_after(size // 2)
    task = asyncio.create_task(client.download_backup(backup_id, dest))
    await within(sim.wait_for_bytes(backup_id, "database", size // 2))
    return task


async def test_second_download_into_the_same_folder_fails_at_once(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    first = await start_stalled_download(sim, client, backup_id, tmp_path)
    try:
        with pytest.raises(DownloadLockedError) as caught:
            await within(client.download_backup(backup_id, tmp_path), 2.0)
        assert f"process {os.getpid()}" in str(caught.value)
        sim.faults.release_stalls()
        result = await within(first)
    finally:
        sim.faults.release_stalls()
        await settle(first)

    assert result.verified
    assert_all_bytes_match(sim, result)


async def test_second_download_with_lock_timeout_waits_then_finds_it_complete(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    first = await start_stalled_download(sim, client, backup_id, tmp_path)
    second = asyncio.create_task(client.download_backup(backup_id, tmp_path, lock_timeout=5))
    try:
        finished, _ = await asyncio.wait({second}, timeout=0.3)
        assert not finished, "the second download did not wait for the lock"
        sim.faults.release_stalls()
        first_result = await within(first)
        sim.reset_records()
        second_result = await within(second)
    finally:
        sim.faults.release_stalls()
        await settle(first)
        await settle(second)

    assert not first_result.skipped
    assert second_result.skipped
    assert second_result.bytes_transferred == 0
    assert sim.storage_requests() == []
    assert [f.sha256 for f in second_result.files] == [f.sha256 for f in first_result.files]


async def test_lock_is_released_after_a_failed_download(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.storage_errors(404, times=1, artifact="database")
    with pytest.raises(StorageError):
        await client.download_backup(backup_id, tmp_path)

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified


@contextlib.contextmanager
def looked_at_lock(folder: Path) -> Iterator[tuple[Folder, str, int]]:
    """A backup's lock file in ``folder`` with a shared ``flock`` on it, as the archive's
    inventory takes for an instant to see whether a download runs; yields the folder,
    the lock's name and the looker's descriptor (unlock it to let go)."""
    name = lock_name(uuid.uuid4())
    (folder / name).touch()
    looker = os.open(folder / name, os.O_RDONLY)
    fcntl.flock(looker, fcntl.LOCK_SH | fcntl.LOCK_NB)
    try:
        with Folder(os.open(folder, os.O_RDONLY | os.O_DIRECTORY), folder) as env:
            yield env, name, looker
    finally:
        os.close(looker)


async def test_someone_looking_at_the_lock_does_not_make_a_download_fail(
    tmp_path: Path,
) -> None:
    with looked_at_lock(tmp_path) as (env, name, looker):
        lock = FolderLock(env, name, timeout=0)
        task = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)  # the first attempt ran: the lock was only looked at
        assert not task.done(), "someone looking at the lock was taken for a downloader"
        fcntl.flock(looker, fcntl.LOCK_UN)
        await within(task)
        assert not FolderLock(env, name).try_acquire()  # ours now, exclusively
        lock.release()


async def test_a_look_that_never_ends_is_named_as_such_not_as_a_download(
    tmp_path: Path,
) -> None:
    with looked_at_lock(tmp_path) as (env, name, _), pytest.raises(DownloadLockedError) as caught:
        await within(FolderLock(env, name, timeout=0).acquire(), 5.0)

    assert "looking at the lock" in str(caught.value)
    assert "already downloading" not in str(caught.value)


def test_prune_s_lock_waits_out_a_look_but_not_forever(tmp_path: Path) -> None:
    with looked_at_lock(tmp_path) as (env, name, looker):
        assert not FolderLock(env, name).try_acquire()  # a look that never ends: refused
        letting_go = threading.Timer(0.05, fcntl.flock, (looker, fcntl.LOCK_UN))
        letting_go.start()
        lock = FolderLock(env, name)
        try:
            assert lock.try_acquire()
        finally:
            letting_go.join()
            lock.release()


async def test_a_new_environment_folder_removed_by_another_download_is_made_again(
    sim: OECSimulator, client: OECClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another download that made ``dest/<env>`` and put nothing in it removes it at its
    end; here that happens just after this download opened the folder (before its lock
    file is in it), the one moment a download can see it happen."""
    backup_id = completed_backup(sim)
    opened = backup_module._Place
    removals: list[Path] = []

    def removed_once_opened(dest: Path, environment_id: uuid.UUID) -> Any:
        place = opened(dest, environment_id)
        if not removals:
            removals.append(dest / str(environment_id))
            os.rmdir(removals[0])  # the other download's clean-up
        return place

    monkeypatch.setattr(backup_module, "_Place", removed_once_opened)
    result = await within(client.download_backup(backup_id, tmp_path))

    assert removals
    assert result.verified
    assert result.directory.parent == removals[0]
    assert_all_bytes_match(sim, result)


# -- expiring URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(("style", "refusal"), [("s3", 403), ("gcs", 400)])
async def test_url_expiring_mid_transfer_is_renewed_and_the_transfer_continues(
    big_sim: OECSimulator, big_client: OECClient, tmp_path: Path, style: str, refusal: int
) -> None:
    sim = big_sim
    backup_id = completed_backup(sim)
    sim.configure(expiry_style=style)
    sim.faults.expire_after(400 * KiB)

    result = await big_client.download_backup(backup_id, tmp_path)

    assert len(sim.api_requests("/download")) >= 2
    assert sim.expired_refusals >= 1
    assert refusal in [r.status for r in sim.storage_requests()]  # whichever asked first
    requests = sim.storage_requests("database")
    last = requests[-1]
    assert last.status == 206  # went on where it was, not from zero
    assert last.range is not None
    assert last.range != "bytes=0-"
    assert credential(last) != credential(requests[0])
    assert result.database is not None
    assert result.database.bytes_transferred == DUMP_SIZE
    assert result.verified
    assert_all_bytes_match(sim, result)


async def test_url_about_to_expire_is_renewed_before_storage_refuses_it(
    big_sim: OECSimulator, tmp_path: Path
) -> None:
    sim = big_sim
    backup_id = completed_backup(sim)
    sim.configure(url_ttl=2)  # every URL the API issues lives 2 s: renewed 0.2 s before
    stall_at = 300 * KiB
    sim.faults.stall_after(stall_at, seconds=2.0)  # the server pauses past the TTL...
    sim.faults.drop_after(stall_at + 64 * KiB)  # ...then drops: the resume needs a URL

    async with OECClient(sim.api_key, sim.base_url, timeout=5.0) as client:
        result = await within(client.download_backup(backup_id, tmp_path))

    assert len(sim.api_requests("/download")) == 2
    assert sim.expired_refusals == 0  # renewed before it expired, not after a 403
    first, resumed = sim.storage_requests("database")
    assert credential(resumed) != credential(first)
    assert resumed.status == 206
    assert result.verified
    assert_all_bytes_match(sim, result)


async def test_storage_refusing_fresh_urls_gives_up_after_a_few_renewals(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.storage_errors(403, times=None, artifact="database")

    with pytest.raises(StorageError, match="refusing") as caught:
        await within(client.download_backup(backup_id, tmp_path))

    assert caught.value.artifact == "database"
    assert 2 <= len(sim.api_requests("/download")) <= 5
    assert len(sim.storage_requests("database")) <= 5


# -- secrets -------------------------------------------------------------------------------

SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def assert_storage_saw_no_secret(sim: OECSimulator, *secrets: str) -> None:
    storage = sim.storage_requests()
    assert storage, "no storage request recorded"
    for record in storage:
        names = {name.lower() for name in record.headers}
        assert not names & SECRET_HEADERS, (record.server, record.headers)
        seen = " ".join([*record.headers.values(), *record.query.values(), record.path])
        for secret in (sim.api_key, *secrets):
            assert secret not in seen, record.server


async def test_no_authorization_header_ever_reaches_storage(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)

    await client.download_backup(backup_id, tmp_path)

    assert all(
        r.headers.get("Authorization") == f"Bearer {sim.api_key}" for r in sim.api_requests()
    )
    assert {r.artifact for r in sim.storage_requests()} == {"manifest", "database", "filestore"}
    assert_storage_saw_no_secret(sim)


async def test_no_authorization_header_reaches_storage_across_a_redirect(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    for artifact in ("manifest", "database", "filestore"):
        sim.faults.redirect_storage(artifact=artifact)  # once each: the target serves it

    result = await client.download_backup(backup_id, tmp_path)

    redirected = [r for r in sim.storage_requests() if r.server == "storage-alt"]
    assert {r.artifact for r in redirected} == {"manifest", "database", "filestore"}
    assert all(r.status == 200 for r in redirected)
    assert [r.status for r in sim.storage_requests() if r.server == "storage"] == [307] * 3
    assert_storage_saw_no_secret(sim)
    assert result.verified
    assert_all_bytes_match(sim, result)


async def test_borrowed_session_headers_and_cookies_never_reach_storage(
    sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.redirect_storage(artifact="database")
    caller_secret = "caller-default-token-0123456789"
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {caller_secret}", "X-Caller": caller_secret},
        cookies={"session": caller_secret},
    ) as session:
        async with OECClient(sim.api_key, sim.base_url, session=session, timeout=5.0) as client:
            result = await client.download_backup(backup_id, tmp_path)

        assert not session.closed  # borrowed, not closed by the client

    assert any(r.server == "storage-alt" for r in sim.storage_requests("database"))
    assert_storage_saw_no_secret(sim, caller_secret)
    assert all("x-caller" not in {h.lower() for h in r.headers} for r in sim.storage_requests())
    assert all(
        r.headers.get("Authorization") == f"Bearer {sim.api_key}" for r in sim.api_requests()
    )
    assert result.verified
