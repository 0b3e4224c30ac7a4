"""A simulator of the OEC.sh backups API and its presigned storage, for tests and demos.

Start it on loopback and point a client at it, exactly as you would at the platform::

    from oec_async import OECClient
    from oec_async.testing import OECSimulator

    async with OECSimulator(seed=7) as sim:
        async with OECClient(sim.api_key, sim.base_url) as client:
            latest = await client.latest_backup(sim.environment_ids[0])

The world is a seeded organisation of projects and environments (``sim.project_ids``,
``sim.environment_ids``) with backups; the API serves the backup routes, discovery
(``/projects``, ``/projects/{id}/environments``, ``/environments/{id}``) and backups
taken on demand (``POST /environments/{id}/backups``, ``/deployments/{task_id}``) that
run in simulated time (``sim.advance(seconds)``), under the platform's rate limits.
``sim.settings`` says how the platform behaves (change it with ``sim.configure(...)``);
``sim.faults`` makes it misbehave on purpose (dropped connections, stalls, corrupt bytes,
expired URLs, 429 and 5xx bursts, every error-body shape) and tells whether each fault
fired; ``sim.requests`` records what it received. In a pytest suite, the plugin
``oec_async.testing.pytest_plugin`` (registered automatically) gives the fixtures
``oec_simulator``, ``oec_client`` and their factories. The full surface is described in
``docs/simulator.md``.
"""

from oec_async.testing._entities import (
    ENVIRONMENT_STATUSES,
    MANIFEST_VARIANTS,
    SimBackup,
    SimEnvironment,
    SimProject,
)
from oec_async.testing._errors import ERROR_SHAPES, ErrorShape
from oec_async.testing._factories import ClientFactory, SimulatorFactory
from oec_async.testing._faults import (
    APIFault,
    BackupFault,
    FaultRule,
    Faults,
    StorageStatusFault,
    StreamFault,
)
from oec_async.testing._files import StoredObject
from oec_async.testing._keys import KeyScope
from oec_async.testing._records import RequestRecord
from oec_async.testing._settings import SimulatorSettings, URLSigner
from oec_async.testing._simulator import OECSimulator

__all__ = [
    "ENVIRONMENT_STATUSES",
    "ERROR_SHAPES",
    "MANIFEST_VARIANTS",
    "APIFault",
    "BackupFault",
    "ClientFactory",
    "ErrorShape",
    "FaultRule",
    "Faults",
    "KeyScope",
    "OECSimulator",
    "RequestRecord",
    "SimBackup",
    "SimEnvironment",
    "SimProject",
    "SimulatorFactory",
    "SimulatorSettings",
    "StorageStatusFault",
    "StoredObject",
    "StreamFault",
    "URLSigner",
]
