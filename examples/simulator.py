"""The simulator outside pytest: the platform and its storage on loopback, no account.

python examples/simulator.py
"""

import asyncio
import tempfile

from oec_async import OECClient
from oec_async.testing import OECSimulator, SimulatorSettings


async def main() -> None:
    settings = SimulatorSettings(bandwidth=8e6)  # bytes per second per connection
    async with OECSimulator(seed=7, settings=settings) as sim:
        sim.faults.drop_after(100_000)  # storage drops one connection, once
        async with OECClient(sim.api_key, sim.base_url) as client:
            env_id = sim.environment_ids[0]
            with tempfile.TemporaryDirectory() as dest:
                results = await client.pull_latest([env_id], dest)
                print([(str(r.environment_id), r.status) for r in results])
        sim.faults.assert_all_fired()  # the drop really happened, and was resumed


if __name__ == "__main__":
    asyncio.run(main())
