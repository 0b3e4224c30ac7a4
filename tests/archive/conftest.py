"""The archive tests' simulator and client (archives are made with
``tests._support.environment_with`` and ``download_all``: real downloads)."""

from __future__ import annotations

import pytest

from oec_async import OECClient
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory

KiB = 1024


@pytest.fixture
async def archive_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(
        seed=99,
        environments=2,
        backups_per_environment=6,
        dump_size=24 * KiB,
        filestore_size=6 * KiB,
        read_limit=None,
    )


@pytest.fixture
async def archive_client(archive_sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(archive_sim, timeout=5.0, requests_per_minute=None)
