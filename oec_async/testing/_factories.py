"""Factories that make started simulators and open clients, and close them all at once.

The pytest plugin hands these out as fixtures (``oec_simulator_factory``,
``oec_client_factory``); they work the same outside pytest::

    simulators = SimulatorFactory()
    try:
        sim = await simulators(seed=7, environments=5, url_ttl=2)
        ...
    finally:
        await simulators.close()
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from oec_async._client import OECClient
from oec_async.testing._settings import SimulatorSettings
from oec_async.testing._simulator import OECSimulator

__all__ = ["ClientFactory", "SimulatorFactory"]


class SimulatorFactory:
    """``await factory(...)`` starts a simulator; :meth:`close` stops every one it made."""

    def __init__(self) -> None:
        self._made: list[tuple[OECSimulator, bool]] = []

    async def __call__(
        self,
        *,
        seed: int = 0,
        environments: int = 3,
        backups_per_environment: int = 15,
        dump_size: int = 256 * 1024,
        filestore_size: int = 64 * 1024,
        projects: int | None = None,
        data_dir: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        settings: SimulatorSettings | None = None,
        assert_all_fired: bool = False,
        **setting_values: Any,
    ) -> OECSimulator:
        """A started simulator on loopback.

        Args:
            seed, environments, backups_per_environment, dump_size, filestore_size,
                projects, data_dir, ssl_context: as for :class:`OECSimulator`.
            settings: how the platform behaves (default: the platform's defaults).
            assert_all_fired: when closing, fail if a fault the test set up never fired.
            **setting_values: settings by name (``url_ttl=2``, ``read_limit=None``...),
                applied over ``settings``.

        Raises:
            ConfigurationError: an unknown setting or a bad value.
        """
        base = settings if settings is not None else SimulatorSettings()
        simulator = OECSimulator(
            seed=seed,
            environments=environments,
            backups_per_environment=backups_per_environment,
            dump_size=dump_size,
            filestore_size=filestore_size,
            projects=projects,
            data_dir=data_dir,
            ssl_context=ssl_context,
            settings=base.replace(**setting_values),
        )
        await simulator.start()
        self._made.append((simulator, assert_all_fired))
        return simulator

    async def close(self) -> None:
        """Stop every simulator made (newest first).

        Raises:
            AssertionError: a simulator made with ``assert_all_fired=True`` has a fault
                that never fired (every simulator is stopped first).
        """
        made, self._made = self._made, []
        for simulator, _ in reversed(made):
            await simulator.stop()
        problems = []
        for simulator, check in made:
            if check:
                try:
                    simulator.faults.assert_all_fired()
                except AssertionError as err:
                    problems.append(f"simulator seed={simulator.seed}: {err}")
        if problems:
            raise AssertionError("\n".join(problems))


class ClientFactory:
    """``await factory(sim, ...)`` opens a client on a simulator; :meth:`close` closes
    every one it made."""

    def __init__(self) -> None:
        self._made: list[OECClient] = []

    async def __call__(
        self,
        simulator: OECSimulator,
        *,
        api_key: str | None = None,
        **options: Any,
    ) -> OECClient:
        """An :class:`~oec_async.OECClient` pointed at ``simulator``.

        Args:
            simulator: a started simulator.
            api_key: the key to use (default: the simulator's read-write key).
            **options: any other ``OECClient`` keyword (``timeout``, ``max_retries``...).
        """
        client = OECClient(api_key or simulator.api_key, simulator.base_url, **options)
        self._made.append(client)
        return client

    async def close(self) -> None:
        """Close every client made (newest first)."""
        made, self._made = self._made, []
        for client in reversed(made):
            await client.close()
