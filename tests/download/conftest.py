"""The download tests' shared worlds, from the plugin's factories: ``big_sim`` (a 1 MiB
dump, for drops, stalls and restarts) and ``seg_sim`` (a 4 MiB dump that segmented
downloads split into four 1 MiB ranges), each with a client that gives up on a silent
server after 5 s."""

from __future__ import annotations

import pytest

from oec_async import OECClient
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
def big_sim_seed() -> int:
    """The seed of ``big_sim``; a test module overrides this fixture to keep its own."""
    return 4242


@pytest.fixture
async def big_sim(big_sim_seed: int, oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Three environments whose backups have a 1 MiB dump."""
    return await oec_simulator_factory(seed=big_sim_seed, dump_size=1 * MiB)


@pytest.fixture
async def big_client(big_sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(big_sim, timeout=5.0)


@pytest.fixture
async def seg_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Backups with a 4 MiB dump and a small filestore, served at 16 MiB/s a connection.

    The per-connection cap keeps the ranges running side by side, and stops storage from
    pushing the first response far past the first range before the client hangs up on it
    (so a fault at an offset hits the range that owns that offset).
    """
    return await oec_simulator_factory(
        seed=77, dump_size=4 * MiB, filestore_size=16 * KiB, bandwidth=16 * MiB
    )


@pytest.fixture
async def seg_client(seg_sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(seg_sim, timeout=5.0)
