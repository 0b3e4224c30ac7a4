"""A simulator of the OEC.sh backups API and its presigned storage, for tests and demos.

Start it on loopback and point a client at it, exactly as you would at the platform::

    from oec_async import OECClient
    from oec_async.testing import OECSimulator

    async with OECSimulator(seed=7) as sim:
        async with OECClient(sim.api_key, sim.base_url) as client:
            latest = await client.latest_backup(sim.environment_ids[0])

``sim.settings`` says how the platform behaves (change it with ``sim.configure(...)``);
``sim.faults`` makes it misbehave on purpose (dropped connections, stalls, corrupt bytes,
expired URLs, 429 and 5xx bursts, every error-body shape) and tells whether each fault
fired; ``sim.requests`` records what it received. In a pytest suite, the plugin
``oec_async.testing.pytest_plugin`` (registered automatically) gives the fixtures
``oec_simulator``, ``oec_client`` and their factories.
"""

from oec_async.testing._errors import ERROR_SHAPES, ErrorShape
from oec_async.testing._factories import ClientFactory, SimulatorFactory
from oec_async.testing._faults import APIFault, FaultRule, Faults, StorageStatusFault, StreamFault
from oec_async.testing._files import StoredObject
from oec_async.testing._keys import KeyScope
from oec_async.testing._records import RequestRecord
from oec_async.testing._settings import SimulatorSettings, URLSigner
from oec_async.testing._simulator import OECSimulator
from oec_async.testing._world import MANIFEST_VARIANTS, SimBackup, SimEnvironment

__all__ = [
    "ERROR_SHAPES",
    "MANIFEST_VARIANTS",
    "APIFault",
    "ClientFactory",
    "ErrorShape",
    "FaultRule",
    "Faults",
    "KeyScope",
    "OECSimulator",
    "RequestRecord",
    "SimBackup",
    "SimEnvironment",
    "SimulatorFactory",
    "SimulatorSettings",
    "StorageStatusFault",
    "StoredObject",
    "StreamFault",
    "URLSigner",
]
