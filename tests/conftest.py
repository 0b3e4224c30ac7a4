"""Shared fixtures: a simulator on loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator


@pytest.fixture
async def sim() -> AsyncIterator[OECSimulator]:
    async with OECSimulator(seed=1234) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: OECSimulator) -> AsyncIterator[OECClient]:
    async with OECClient(sim.api_key, sim.base_url, timeout=5.0) as api_client:
        yield api_client
