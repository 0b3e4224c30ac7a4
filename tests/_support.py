"""Small helpers the download tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from oec_async import OECClient
from oec_async.download import BackupDownload, ProgressEvent
from oec_async.download._folder import Folder
from oec_async.download._layout import lock_name
from oec_async.download._lock import FolderLock
from oec_async.testing import OECSimulator


def completed_backup(sim: OECSimulator) -> uuid.UUID:
    """The newest completed backup of the simulator's first environment."""
    return sim.latest_completed(sim.environment_ids[0]).id


def folder_of(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> Path:
    """Where a backup is once complete: ``dest/<env>/<backup>``."""
    return dest / str(sim.backup(backup_id).environment_id) / str(backup_id)


def work_folder_of(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> Path:
    """Where a backup's download works until it is complete: ``dest/<env>/<backup>.part``."""
    return dest / str(sim.backup(backup_id).environment_id) / f"{backup_id}.part"


def stored_bytes(sim: OECSimulator, backup_id: uuid.UUID, artifact: str) -> bytes:
    return sim.object(backup_id, artifact).path.read_bytes()


def assert_all_bytes_match(sim: OECSimulator, result: BackupDownload) -> None:
    for downloaded in result.files:
        assert downloaded.path.read_bytes() == stored_bytes(
            sim, result.backup_id, downloaded.artifact
        ), downloaded.artifact


async def within(awaitable: Awaitable[Any], seconds: float = 10.0) -> Any:
    """Await with a deadline, so that a regression fails the test instead of hanging it."""
    async with asyncio.timeout(seconds):
        return await awaitable


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


async def interrupt_once_manifest_and_filestore_are_done(
    sim: OECSimulator, client: Any, backup_id: uuid.UUID, dest: Path, *, dump_stalls_at: int
) -> None:
    """Run a download until the manifest and the filestore are verified (the dump stalls
    at ``dump_stalls_at``), then cancel it: an interrupted run that had verified files."""
    sim.faults.stall_after(dump_stalls_at, artifact="database", times=None)
    done: set[str] = set()
    both = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        if event.kind == "done":
            done.add(event.artifact)
            if {"manifest", "filestore"} <= done:
                both.set()

    task = asyncio.create_task(client.download_backup(backup_id, dest, progress=watch))
    try:
        await asyncio.wait_for(both.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sim.faults.clear()


def flip_byte(path: Path, offset: int, *, keep_time: bool = False) -> None:
    """Invert the byte at ``offset`` of ``path``, in place (the size stays). With
    ``keep_time``, the modification time is put back: damage only a re-hash can find."""
    info = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    if keep_time:
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@asynccontextmanager
async def download_lock_held(folder: Path) -> AsyncIterator[None]:
    """Hold the downloader's lock of the backup whose folder is ``folder`` (complete or
    work folder), as a running download would."""
    backup_id = uuid.UUID(folder.name.removesuffix(".part"))
    fd = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY)
    with Folder(fd, folder.parent) as env:
        async with FolderLock(env, lock_name(backup_id)):
            yield


@contextmanager
def mounted_tmpfs(target: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``target`` with ``options`` (e.g. ``size=2m`` or ``ro``), or a
    skip when this machine does not let the tests mount one."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("no mount/umount here")
    target.mkdir(exist_ok=True)
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            "cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): "
            + (done.stderr.strip() or f"exit {done.returncode}")
        )
    try:
        yield target
    finally:
        subprocess.run([umount, "-l", str(target)], capture_output=True, check=False)


@attrs.define
class PingServer:
    """A stand-in for hc-ping.com on loopback that records what it was sent."""

    base_url: str = ""
    #: (method, path, query, body) of every request, in order.
    received: list[tuple[str, str, dict[str, str], str]] = attrs.Factory(list)
    status: int = 200
    #: When set, answers wait for it (a service that hangs).
    hold: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.received.append((request.method, request.path, dict(request.query), body))
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.status, text="OK")

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.received]


@asynccontextmanager
async def serve_pings() -> AsyncIterator[PingServer]:
    server = PingServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        if server.hold is not None:
            server.hold.set()
        await runner.cleanup()


def environment_with(
    sim: OECSimulator,
    created: Sequence[datetime],
    *,
    dump_size: int | None = None,
    filestore_size: int | None = None,
) -> uuid.UUID:
    """A new environment whose completed backups were taken at ``created`` (any order)."""
    env_id = sim.add_environment(
        statuses=["completed"] * len(created), dump_size=dump_size, filestore_size=filestore_size
    )
    ordered = sorted(created, reverse=True)  # the simulator lists newest first
    for backup, moment in zip(sim.backups(env_id), ordered, strict=True):
        sim.update_backup(backup.id, created_at=moment)
    return env_id


async def download_all(
    client: OECClient, sim: OECSimulator, env_id: uuid.UUID, dest: Path
) -> dict[datetime, Path]:
    """Download every completed backup of ``env_id``; creation time -> its folder."""
    folders = {}
    for backup in sim.backups(env_id):
        if backup.status == "completed":
            result = await client.download_backup(backup.id, dest)
            assert result.verified
            folders[backup.created_at] = result.directory
    return folders
