"""The command-line tests' fixtures: a small simulated world, and a runner of
``oec-backups`` subprocesses pointed at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from oec_async.testing import OECSimulator, SimulatorFactory
from tests.cli._helpers import CLI, KiB


@pytest.fixture
async def cli_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    # Six backups per environment: running, completed, completed, failed, completed,
    # pending; types scheduled, manual, pre_deploy, pre_restore, pre_upgrade, pre_destroy.
    return await oec_simulator_factory(
        seed=2024,
        environments=3,
        backups_per_environment=6,
        dump_size=32 * KiB,
        filestore_size=8 * KiB,
    )


@pytest.fixture
def cli(cli_sim: OECSimulator, tmp_path: Path) -> CLI:
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    return CLI(cli_sim, child_tmp)
