"""A simulator of the OEC.sh backups API and its presigned storage, for tests and demos.

Start it on loopback and point a client at it, exactly as you would at the platform::

    from oec_async import OECClient
    from oec_async.testing import OECSimulator

    async with OECSimulator(seed=7) as sim:
        async with OECClient(sim.api_key, sim.base_url) as client:
            latest = await client.latest_backup(sim.environment_ids[0])

``sim.faults`` makes it misbehave on purpose (dropped connections, stalls, corrupt bytes,
expired URLs, 429 and 5xx bursts, every error-body shape); ``sim.requests`` records what
it received.
"""

from oec_async.testing._data import MANIFEST_VARIANTS, SimBackup, SimEnvironment, StoredObject
from oec_async.testing._faults import APIFault, Faults, StorageStatusFault, StreamFault
from oec_async.testing._simulator import OECSimulator, RequestRecord

__all__ = [
    "MANIFEST_VARIANTS",
    "APIFault",
    "Faults",
    "OECSimulator",
    "RequestRecord",
    "SimBackup",
    "SimEnvironment",
    "StorageStatusFault",
    "StoredObject",
    "StreamFault",
]
