"""The simulator's API in a background thread of the harness, its storage served by nginx.

The harness process only answers a handful of API calls per round; every byte of every
download comes from nginx, and every contender runs as its own process.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from oec_async.testing import OECSimulator, SimulatorSettings

__all__ = ["SimulatorThread"]

T = TypeVar("T")


class SimulatorThread:
    def __init__(
        self,
        data_dir: Path,
        *,
        environments: int,
        dump_size: int,
        filestore_size: int,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.sim = OECSimulator(
            seed=2026,
            environments=environments,
            backups_per_environment=2,
            dump_size=dump_size,
            filestore_size=filestore_size,
            data_dir=data_dir,
            # the benchmarks measure transfers, not pacing
            settings=SimulatorSettings(read_limit=None),
        )
        self.call(self.sim.start())
        self.latest = {env: self.sim.latest_completed(env).id for env in self.sim.environment_ids}
        for backup_id in self.latest.values():  # files on disk before any clock starts
            self.sim.objects(backup_id)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def serve_storage_from(self, url: str | None) -> None:
        """Issue presigned URLs pointing at ``url`` (an nginx) instead of the simulator."""
        self.sim.configure(storage_public_url=url)

    @property
    def env_ids(self) -> list[uuid.UUID]:
        return list(self.latest)

    def object_path(self, env_id: uuid.UUID, artifact: str = "database") -> Path:
        return self.sim.object(self.latest[env_id], artifact).path

    def signed_url(self, env_id: uuid.UUID, artifact: str = "database") -> str:
        return self.sim.presign(self.latest[env_id], artifact, ttl=3600)

    def close(self) -> None:
        self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
