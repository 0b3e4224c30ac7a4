"""Shared fixtures: a simulator on loopback, a client pointed at it, and a secrets audit
that runs around every test.

The simulators and clients come from the package's own pytest plugin
(``oec_async.testing.pytest_plugin``, registered by its ``pytest11`` entry point): a test
file that needs another size or seed asks ``oec_simulator_factory`` for one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from oec_async import OECClient
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory

pytest_plugins = ["pytester"]

# A whole key (not its masked prefix), and a presigned signature value in clear.
_KEY = re.compile(r"oec_live_(?:ro|rw)_[A-Za-z0-9_-]{20,}")
_SIGNATURE = re.compile(r"(?i)(?:x-amz-signature|signature)=(?!<redacted>)[0-9a-z%+/=]{8,}")


@pytest.fixture(autouse=True)
def no_secret_is_ever_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test runs with the oec_async loggers at DEBUG; whatever it did, no log line
    may carry an API key or a presigned signature."""
    caplog.set_level(logging.DEBUG, logger="oec_async")
    yield
    leaks = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("oec_async")
        and (_KEY.search(record.getMessage()) or _SIGNATURE.search(record.getMessage()))
    ]
    assert leaks == [], f"secrets in {len(leaks)} log line(s): {leaks[:3]}"


@pytest.fixture
async def sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """The default world: three environments of fifteen backups, seed 1234."""
    return await oec_simulator_factory(seed=1234)


@pytest.fixture
async def client(sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    """A client on ``sim`` that gives up on a silent server after 5 s."""
    return await oec_client_factory(sim, timeout=5.0)
