"""Your own code, tested against the simulator with the pytest plugin's fixtures.

pytest examples/test_nightly_job.py
"""

from pathlib import Path

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator


async def my_nightly_job(client: OECClient, dest: Path) -> None:
    """The code under test: pull the newest backup of every environment."""
    env_ids = [env.id async for env in client.iter_environments()]
    results = await client.pull_latest(env_ids, dest)
    assert all(r.ok for r in results)


@pytest.mark.oec_simulator(seed=7, environments=3, url_ttl=2)  # optional
async def test_my_nightly_job_survives_a_dropped_connection(
    oec_simulator: OECSimulator, oec_client: OECClient, tmp_path: Path
) -> None:
    oec_simulator.faults.drop_after(100_000)  # storage drops the connection once
    await my_nightly_job(oec_client, tmp_path)  # your code, given an OECClient
    oec_simulator.faults.assert_all_fired()  # the fault really happened
