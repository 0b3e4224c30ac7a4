"""``SimulatorState``: everything the API app and the storage app share.

Both apps are given this one object (anyio's ``_MemoryObjectStreamState`` is the model:
two ends share a small state instead of reaching into each other). ``OECSimulator``
owns it, starts the servers around it, and exposes the public surface on top of it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from pathlib import Path

from oec_async.testing._clock import SimClock
from oec_async.testing._entities import ARTIFACTS, SimBackup
from oec_async.testing._faults import FaultRules
from oec_async.testing._files import ObjectStore, StoredObject
from oec_async.testing._jobs import Jobs
from oec_async.testing._keys import KeyRing
from oec_async.testing._limits import RateLimiter
from oec_async.testing._records import RequestLog
from oec_async.testing._settings import SimulatorSettings
from oec_async.testing._signing import URLSigning
from oec_async.testing._world import World

__all__ = ["Origins", "SimulatorState"]


class Origins:
    """Where the servers listen (known once they are started)."""

    def __init__(self) -> None:
        self.api = ""
        self.storage = ""
        self.alt_storage = ""


class SimulatorState:
    """The world, its files, the settings, the fault rules, the keys, the limiter, the
    URL signing, the simulated clock, the backup jobs and the request log of one
    simulator."""

    def __init__(
        self,
        *,
        data_dir: Path,
        seed: int,
        environments: int,
        backups_per_environment: int,
        dump_size: int,
        filestore_size: int,
        projects: int | None,
        settings: SimulatorSettings,
    ) -> None:
        self.world = World(
            seed=seed,
            environments=environments,
            backups_per_environment=backups_per_environment,
            dump_size=dump_size,
            filestore_size=filestore_size,
            projects=projects,
        )
        self.files = ObjectStore(data_dir)
        self.settings = settings
        self.clock = SimClock(speed=settings.clock_speed)
        self.jobs = Jobs()
        self.rules = FaultRules()
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.origins = Origins()
        rng = random.Random(seed ^ 0x5EED)
        self.keys = KeyRing(rng)
        self.api_key = self.keys.add("rw", name="default-rw")
        self.read_only_key = self.keys.add("ro", name="default-ro")
        self.signing = URLSigning(rng.randbytes(32))
        self.cursor_secret = rng.randbytes(16)

    def configure(self, settings: SimulatorSettings) -> None:
        """Switch to new settings (the clock takes its new speed from now on)."""
        if settings.clock_speed != self.settings.clock_speed:
            self.clock.set_speed(settings.clock_speed)
        self.settings = settings

    def sync(self) -> None:
        """Bring every backup taken on demand up to the simulated time."""
        self.jobs.sync(self.world, self.clock.now())

    def objects(self, backup: SimBackup) -> dict[str, StoredObject]:
        """The backup's stored files (generated on first use)."""
        return self.files.objects(backup)

    def presign(self, backup: SimBackup, ttl: float, artifacts: Iterable[str]) -> dict[str, str]:
        """Presigned URLs for these artifacts, as the download endpoint hands them out."""
        self.signing.urls_issued += 1
        signer = self.settings.url_signer
        if signer is not None:  # another storage signs (a real S3 server, say)
            return {a: signer(backup, a, ttl) for a in artifacts}
        base = self.settings.storage_public_url or self.origins.storage
        return {
            a: self.signing.sign(base, "/" + self.files.object_key(backup, a), ttl)
            for a in artifacts
        }

    def resolve_object_path(self, path: str) -> tuple[SimBackup, str] | None:
        """The backup and artifact a storage path names, or None."""
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "bucket":
            return None
        try:
            backup = self.world.backups.get(uuid.UUID(parts[2]))
        except ValueError:
            return None
        if backup is None or str(backup.environment_id) != parts[1]:
            return None
        for artifact in ARTIFACTS:
            if backup.file_names.get(artifact) == parts[3]:
                return backup, artifact
        return None
