"""pytest fixtures for testing your own code against the OEC.sh simulator.

Installed with oec-async and registered automatically (entry point ``pytest11``, name
``oec_async``); switch it off with ``-p no:oec_async``. The fixtures are async: they need
pytest-asyncio (``asyncio_mode = "auto"``, or strict mode: they are declared with
``pytest_asyncio.fixture``).

Fixtures (all function-scoped):

``oec_simulator``
    A started :class:`~oec_async.testing.OECSimulator` on loopback, stopped after the
    test. Configure it with the marker ``@pytest.mark.oec_simulator(**kwargs)`` (any
    argument of ``oec_simulator_factory``, settings included), on the test, its class or
    its module; the closest marker wins per argument.
``oec_client``
    An :class:`~oec_async.OECClient` pointed at ``oec_simulator`` with its read-write
    key, closed after the test. The marker ``@pytest.mark.oec_client(**options)`` passes
    ``OECClient`` options (``timeout``, ``max_retries``...).
``oec_simulator_factory``
    ``await oec_simulator_factory(seed=0, environments=3, backups_per_environment=15,
    dump_size=..., filestore_size=..., projects=None, data_dir=None, ssl_context=None,
    settings=None, assert_all_fired=False, **settings)`` starts another simulator (any
    number per test); all are stopped after the test. With ``assert_all_fired=True`` the
    test fails if a fault it set up in ``sim.faults`` never fired.
``oec_client_factory``
    ``await oec_client_factory(simulator, api_key=None, **options)`` opens another
    client; all are closed after the test.

Example::

    import pytest

    @pytest.mark.oec_simulator(seed=7, environments=2, url_ttl=2)
    async def test_my_backup_job(oec_simulator, oec_client, tmp_path):
        oec_simulator.faults.drop_after(100_000)
        await my_backup_job(oec_client, tmp_path)      # your code
        oec_simulator.faults.assert_all_fired()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from oec_async._client import OECClient
from oec_async.testing._factories import ClientFactory, SimulatorFactory
from oec_async.testing._simulator import OECSimulator

if TYPE_CHECKING:
    async_fixture = pytest.fixture
else:
    try:  # strict mode needs pytest-asyncio's decorator; auto mode accepts it too
        from pytest_asyncio import fixture as async_fixture
    except ImportError:  # without pytest-asyncio no async fixture runs anyway
        async_fixture = pytest.fixture

__all__ = [
    "oec_client",
    "oec_client_factory",
    "oec_simulator",
    "oec_simulator_factory",
    "pytest_configure",
]


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's markers (so ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers",
        "oec_simulator(**kwargs): arguments for the oec_simulator fixture "
        "(seed, environments, dump_size, settings by name...)",
    )
    config.addinivalue_line(
        "markers", "oec_client(**options): OECClient options for the oec_client fixture"
    )


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """Keyword arguments of every ``name`` marker, the closest one winning per key."""
    merged: dict[str, Any] = {}
    for marker in request.node.iter_markers(name):  # closest first
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only")
        for key, value in marker.kwargs.items():
            merged.setdefault(key, value)
    return merged


@async_fixture
async def oec_simulator_factory() -> AsyncIterator[SimulatorFactory]:
    """Start simulators on demand: ``await oec_simulator_factory(seed=..., **settings)``;
    every one is stopped after the test."""
    factory = SimulatorFactory()
    try:
        yield factory
    finally:
        await factory.close()


@async_fixture
async def oec_client_factory() -> AsyncIterator[ClientFactory]:
    """Open clients on demand: ``await oec_client_factory(sim, **options)``; every one
    is closed after the test."""
    factory = ClientFactory()
    try:
        yield factory
    finally:
        await factory.close()


@async_fixture
async def oec_simulator(
    request: pytest.FixtureRequest, oec_simulator_factory: SimulatorFactory
) -> OECSimulator:
    """A started simulator, configured by ``@pytest.mark.oec_simulator(...)``."""
    return await oec_simulator_factory(**_marker_kwargs(request, "oec_simulator"))


@async_fixture
async def oec_client(
    request: pytest.FixtureRequest,
    oec_simulator: OECSimulator,
    oec_client_factory: ClientFactory,
) -> OECClient:
    """A client pointed at ``oec_simulator``, configured by ``@pytest.mark.oec_client``."""
    return await oec_client_factory(oec_simulator, **_marker_kwargs(request, "oec_client"))
