"""Small helpers the download tests share."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from oec_async.download import BackupDownload
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
