"""The simulator's world: environments and their backups, as the API describes them.

Everything is derived from one seed, so a test (or a bug report) can name the exact
world it ran against. The records are frozen: a test changes a backup through
``OECSimulator.update_backup``, which also regenerates the files behind it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from oec_async.errors import ConfigurationError

__all__ = [
    "ARTIFACTS",
    "BASE_TIME",
    "DEFAULT_NAMES",
    "EDITABLE_BACKUP_FIELDS",
    "FILE_FIELDS",
    "MANIFEST_VARIANTS",
    "SimBackup",
    "SimEnvironment",
    "World",
    "iso",
    "seeded_uuid",
]

ARTIFACTS = ("database", "filestore", "manifest")
DEFAULT_NAMES: Mapping[str, str] = MappingProxyType(
    {"database": "dump.sql", "filestore": "filestore.tar.gz", "manifest": "manifest.json"}
)

#: How the manifest of a backup may be written (API.md section 4), plus hostile ones.
MANIFEST_VARIANTS = (
    "canonical",  # files: {database: {...}, filestore: {...}}
    "files_list",  # files: [{name, bytes, checksum: "sha256:<hex>"}]
    "files_list_path",  # files: [{path, size, sha256}]
    "checksums_map",  # top-level checksums: {filename: "sha256:<hex>"} + sizes in files
    "checksums_bare",  # top-level checksums: {filename: "<hex>"} (bare sha256)
    "short_keys",  # files: {db: ..., filestore: ...}
    "dump_key",  # files: {dump: ..., filestore: ...}
    "sha512",  # checksum: "sha512:<hex>"
    "md5",  # checksum: "md5:<hex>"
    "no_checksums",  # sizes only
    "traversal",  # filename "../../evil.sql"
    "absolute",  # filename "/etc/evil.sql"
    "invalid_json",
    "not_an_object",  # a JSON list
)

BASE_TIME = datetime(2026, 5, 22, 18, 0, 0, tzinfo=UTC)
_STATUS_CYCLE = (
    "running",
    "completed",
    "completed",
    "failed",
    "completed",
    "pending",
    "completed",
    "cancelled",
    "completed",
    "in_progress",
    "completed",
    "uploading",
    "completed",
    "expired",
    "completed",
)
_TYPE_CYCLE = ("scheduled", "manual", "pre_deploy", "pre_restore", "pre_upgrade", "pre_destroy")


def iso(dt: datetime | None) -> str | None:
    """A timestamp as the API writes it (``2026-05-22T18:00:00Z``), or None."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (so a seed names the whole world)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _frozen_names(names: Mapping[str, str]) -> Mapping[str, str]:
    merged = {**DEFAULT_NAMES, **names}
    unknown = set(merged) - set(ARTIFACTS)
    if unknown:
        raise ConfigurationError(f"file_names: unknown artifact(s) {sorted(unknown)}")
    return MappingProxyType(merged)


def _check_variant(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in MANIFEST_VARIANTS:
        raise ConfigurationError(
            f"manifest_variant {value!r} is not one of {', '.join(MANIFEST_VARIANTS)}"
        )


@attrs.frozen
class SimBackup:
    """A backup as the simulator serves it.

    Frozen: change one with ``OECSimulator.update_backup(backup_id, **changes)``, which
    regenerates its files when a change affects them.
    """

    id: uuid.UUID
    environment_id: uuid.UUID
    status: str
    backup_type: str
    created_at: datetime
    dump_size: int
    filestore_size: int
    seed: int
    has_filestore: bool = True
    has_manifest: bool = True
    has_database: bool = True
    manifest_variant: str = attrs.field(default="canonical", validator=_check_variant)
    file_names: Mapping[str, str] = attrs.field(default=DEFAULT_NAMES, converter=_frozen_names)
    version: int = 0  # bumped by change_object: new bytes, new ETag
    error_message: str | None = None

    @property
    def completed_at(self) -> datetime | None:
        """When the backup completed (None unless it is ``completed``)."""
        if self.status != "completed":
            return None
        return self.created_at + timedelta(seconds=30 + self.dump_size // 100_000)

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        """The backup as the API sends it (``detail``: as ``GET /backups/{id}`` does)."""
        completed = self.completed_at
        database = self.dump_size if self.status == "completed" else None
        filestore = self.filestore_size if self.status == "completed" else None
        body: dict[str, Any] = {
            "id": str(self.id),
            "environment_id": str(self.environment_id),
            "status": self.status,
            "backup_type": self.backup_type,
            "database_size": database,
            "filestore_size": filestore,
            "total_size": (database or 0) + (filestore or 0) if completed else None,
            "compressed_size": None,
            "started_at": iso(self.created_at),
            "completed_at": iso(completed),
            "duration_seconds": int((completed - self.created_at).total_seconds())
            if completed
            else None,
            "expires_at": iso(self.created_at + timedelta(days=30)),
            "is_verified": completed is not None,
            "verified_at": iso(completed + timedelta(seconds=29)) if completed else None,
            "notes": None,
            "created_at": iso(self.created_at),
        }
        if self.error_message is not None:
            body["error_message"] = self.error_message
        if self.status in ("failed", "cancelled"):
            body["task_id"] = f"task-{self.seed % 100000:05d}"
        if detail:
            body["environment_snapshot"] = {"odoo_version": "17.0", "name": "sim"}
        return body


#: Fields of a backup a test may change with ``update_backup``.
EDITABLE_BACKUP_FIELDS = frozenset(
    {
        "status",
        "backup_type",
        "error_message",
        "has_database",
        "has_filestore",
        "has_manifest",
        "manifest_variant",
        "file_names",
        "dump_size",
        "filestore_size",
    }
)
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "backup_type": str,
    "error_message": (str, type(None)),
    "has_database": bool,
    "has_filestore": bool,
    "has_manifest": bool,
    "manifest_variant": str,
    "file_names": Mapping,
    "dump_size": int,
    "filestore_size": int,
}
#: Of those, the ones that change the stored files (so the files are made again).
FILE_FIELDS = frozenset(
    {"has_filestore", "manifest_variant", "file_names", "dump_size", "filestore_size"}
)


@attrs.frozen
class SimEnvironment:
    """An environment of the simulated organisation."""

    id: uuid.UUID
    name: str


class World:
    """All environments and backups (the files behind them live in ``ObjectStore``)."""

    def __init__(
        self,
        *,
        seed: int,
        environments: int,
        backups_per_environment: int,
        dump_size: int,
        filestore_size: int,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.dump_size = dump_size
        self.filestore_size = filestore_size
        self.environments: dict[uuid.UUID, SimEnvironment] = {}
        self.backups: dict[uuid.UUID, SimBackup] = {}
        self._order: dict[uuid.UUID, list[uuid.UUID]] = {}  # env -> backup ids, newest first
        for index in range(environments):
            self.add_environment(backups=backups_per_environment, name=f"env-{index:03d}")

    def add_environment(
        self,
        *,
        backups: int = 15,
        name: str | None = None,
        statuses: Iterable[str] | None = None,
        dump_size: int | None = None,
        filestore_size: int | None = None,
    ) -> SimEnvironment:
        """An environment with ``backups`` backups, newest first, covering every status
        and type (or exactly the given ``statuses``, newest first)."""
        env = SimEnvironment(id=seeded_uuid(self.rng), name=name or f"env-{len(self.environments)}")
        self.environments[env.id] = env
        self._order[env.id] = []
        chosen = (
            list(statuses)
            if statuses is not None
            else [_STATUS_CYCLE[i % len(_STATUS_CYCLE)] for i in range(backups)]
        )
        start = BASE_TIME - timedelta(hours=len(self.environments))
        for i, status in enumerate(chosen):
            backup = SimBackup(
                id=seeded_uuid(self.rng),
                environment_id=env.id,
                status=status,
                backup_type=_TYPE_CYCLE[i % len(_TYPE_CYCLE)],
                created_at=start - timedelta(days=i),
                dump_size=self.dump_size if dump_size is None else dump_size,
                filestore_size=self.filestore_size if filestore_size is None else filestore_size,
                seed=self.rng.getrandbits(32),
                error_message="pg_dump exited with code 1" if status == "failed" else None,
            )
            self._order[env.id].append(backup.id)
            self.backups[backup.id] = backup
        return env

    def add_backup(
        self,
        env_id: uuid.UUID,
        *,
        status: str = "completed",
        backup_type: str = "manual",
        created_at: datetime | None = None,
        has_filestore: bool = True,
    ) -> SimBackup:
        """A new backup at the top of the environment's list (the newest).

        Raises:
            KeyError: no such environment.
        """
        order = self._order[env_id]
        newest = self.backups[order[0]].created_at if order else BASE_TIME
        backup = SimBackup(
            id=seeded_uuid(self.rng),
            environment_id=env_id,
            status=status,
            backup_type=backup_type,
            created_at=created_at or newest + timedelta(hours=1),
            dump_size=self.dump_size,
            filestore_size=self.filestore_size,
            seed=self.rng.getrandbits(32),
            has_filestore=has_filestore,
        )
        order.insert(0, backup.id)
        self.backups[backup.id] = backup
        return backup

    def backups_of(self, env_id: uuid.UUID) -> list[SimBackup]:
        """The environment's backups, newest first (empty for an unknown environment)."""
        return [self.backups[b] for b in self._order.get(env_id, [])]

    def latest_completed(self, env_id: uuid.UUID) -> SimBackup | None:
        """The environment's newest completed backup, or None."""
        return next((b for b in self.backups_of(env_id) if b.status == "completed"), None)

    def replace_backup(self, backup: SimBackup) -> None:
        """Store a new version of an existing backup (same id)."""
        if backup.id not in self.backups:
            raise KeyError(backup.id)
        self.backups[backup.id] = backup

    def update_backup(self, backup_id: uuid.UUID, changes: Mapping[str, Any]) -> SimBackup:
        """Apply ``changes`` (names from ``EDITABLE_BACKUP_FIELDS``) to a backup.

        Raises:
            KeyError: no such backup.
            ConfigurationError: an unknown field, or a bad value.
        """
        unknown = set(changes) - EDITABLE_BACKUP_FIELDS
        if unknown:
            raise ConfigurationError(
                f"update_backup: unknown field(s) {', '.join(sorted(unknown))}; "
                f"editable: {', '.join(sorted(EDITABLE_BACKUP_FIELDS))}"
            )
        for name, value in changes.items():
            bad_size = name.endswith("_size") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            )
            if bad_size or not isinstance(value, _FIELD_TYPES[name]):
                raise ConfigurationError(f"update_backup: bad value for {name}: {value!r}")
        current = self.backups[backup_id]
        values = dict(changes)
        if "file_names" in values:  # a partial mapping renames only what it names
            values["file_names"] = {**current.file_names, **values["file_names"]}
        updated = attrs.evolve(current, **values)
        self.backups[backup_id] = updated
        return updated
