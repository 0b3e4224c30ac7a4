"""Shared fixtures: a simulator on loopback, a client pointed at it, and a secrets audit
that runs around every test."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator

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
async def sim() -> AsyncIterator[OECSimulator]:
    async with OECSimulator(seed=1234) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: OECSimulator) -> AsyncIterator[OECClient]:
    async with OECClient(sim.api_key, sim.base_url, timeout=5.0) as api_client:
        yield api_client
