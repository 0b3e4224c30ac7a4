"""The archive tests' simulator and client (archives are made with
``tests._support.environment_with`` and ``download_all``: real downloads)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator, SimulatorSettings

KiB = 1024


@pytest.fixture
async def archive_sim() -> AsyncIterator[OECSimulator]:
    async with OECSimulator(
        seed=99,
        environments=2,
        backups_per_environment=6,
        dump_size=24 * KiB,
        filestore_size=6 * KiB,
        settings=SimulatorSettings(read_limit=None),
    ) as simulator:
        yield simulator


@pytest.fixture
async def archive_client(archive_sim: OECSimulator) -> AsyncIterator[OECClient]:
    async with OECClient(
        archive_sim.api_key, archive_sim.base_url, timeout=5.0, requests_per_minute=None
    ) as api_client:
        yield api_client
