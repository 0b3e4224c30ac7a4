"""Real archives for the archive tests: backups the simulator serves, downloaded by the
real downloader into a real destination folder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator

KiB = 1024


@pytest.fixture
async def archive_sim() -> AsyncIterator[OECSimulator]:
    async with OECSimulator(
        seed=99,
        environments=2,
        backups_per_environment=6,
        dump_size=24 * KiB,
        filestore_size=6 * KiB,
        rate_limit=None,
    ) as simulator:
        yield simulator


@pytest.fixture
async def archive_client(archive_sim: OECSimulator) -> AsyncIterator[OECClient]:
    async with OECClient(
        archive_sim.api_key, archive_sim.base_url, timeout=5.0, requests_per_minute=None
    ) as api_client:
        yield api_client


def environment_with(sim: OECSimulator, created: Sequence[datetime], **kwargs: object) -> uuid.UUID:
    """A new environment whose completed backups were taken at ``created`` (any order)."""
    env_id = sim.add_environment(statuses=["completed"] * len(created), **kwargs)
    ordered = sorted(created, reverse=True)  # the simulator lists newest first
    for backup, moment in zip(sim.environment(env_id).backups, ordered, strict=True):
        backup.created_at = moment
    return env_id


async def download_all(
    client: OECClient, sim: OECSimulator, env_id: uuid.UUID, dest: Path
) -> dict[datetime, Path]:
    """Download every completed backup of ``env_id``; creation time -> its folder."""
    folders = {}
    for backup in sim.environment(env_id).backups:
        if backup.status == "completed":
            result = await client.download_backup(backup.id, dest)
            assert result.verified
            folders[backup.created_at] = result.directory
    return folders
