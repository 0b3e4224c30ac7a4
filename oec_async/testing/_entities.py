"""What the simulated platform holds: projects, environments and backups, as frozen
records, and the JSON the API sends for each (API.md sections 1 and 8).

Frozen so that a test cannot change one behind the simulator's back: changes go through
``OECSimulator.update_backup`` / ``update_environment``, which keep files and indexes true.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from oec_async.errors import ConfigurationError

__all__ = [
    "ACTIVE_ENVIRONMENT_STATUSES",
    "ARTIFACTS",
    "BACKUP_TYPES",
    "BASE_TIME",
    "DEFAULT_NAMES",
    "EDITABLE_BACKUP_FIELDS",
    "EDITABLE_ENVIRONMENT_FIELDS",
    "ENVIRONMENT_STATUSES",
    "FILE_FIELDS",
    "MANIFEST_VARIANTS",
    "SimBackup",
    "SimEnvironment",
    "SimProject",
    "check_changes",
    "iso",
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

#: The backup types the platform documents or is seen sending.
BACKUP_TYPES = ("manual", "scheduled", "pre_deploy", "pre_restore", "pre_upgrade", "pre_destroy")
#: The environment statuses of API.md section 8 (a test may set any other string too).
ENVIRONMENT_STATUSES = ("pending", "cloning", "deploying", "running", "stopped", "paused", "error")
#: What ``active_environments_only`` keeps in environment lists.
ACTIVE_ENVIRONMENT_STATUSES = frozenset({"pending", "cloning", "deploying", "running"})

BASE_TIME = datetime(2026, 5, 22, 18, 0, 0, tzinfo=UTC)


def iso(dt: datetime | None) -> str | None:
    """A timestamp as the API writes it (``2026-05-22T18:00:00Z``), or None."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def _drop(body: dict[str, Any], omitted: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in omitted}


@attrs.frozen
class SimProject:
    """A project of the simulated organisation. ``omitted`` names the fields its JSON
    leaves out (any field but ``id`` may be missing, API.md section 8)."""

    id: uuid.UUID
    name: str
    created_at: datetime
    odoo_version: str | None = "17.0"
    git_repo_url: str | None = None
    default_branch: str | None = "main"
    git_provider: str | None = None
    server_id: uuid.UUID | None = None
    omitted: frozenset[str] = frozenset()

    def to_json(self, environment_count: int) -> dict[str, Any]:
        """The project as the API sends it."""
        body = {
            "id": str(self.id),
            "name": self.name,
            "odoo_version": self.odoo_version,
            "git_repo_url": self.git_repo_url,
            "default_branch": self.default_branch,
            "git_provider": self.git_provider,
            "environment_count": environment_count,
            "server_id": str(self.server_id) if self.server_id else None,
            "created_at": iso(self.created_at),
        }
        return _drop(body, self.omitted)


@attrs.frozen
class SimEnvironment:
    """An environment of a project. A ``deleted`` one answers 404 and is in no list, while
    its backups stay readable."""

    id: uuid.UUID
    name: str
    project_id: uuid.UUID
    status: str = "running"
    created_at: datetime = BASE_TIME
    updated_at: datetime | None = None
    url: str | None = None
    odoo_version: str | None = "17.0"
    branch: str | None = "main"
    last_commit: str | None = None
    cpu_cores: int | None = 2
    ram_mb: int | None = 4096
    disk_gb: int | None = 40
    server_id: uuid.UUID | None = None
    custom_domain: str | None = None
    custom_domain_verified: bool | None = None
    deleted: bool = False
    omitted: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The environment as the API sends it."""
        body = {
            "id": str(self.id),
            "name": self.name,
            "status": self.status,
            "url": self.url,
            "odoo_version": self.odoo_version,
            "branch": self.branch,
            "last_commit": self.last_commit,
            "cpu_cores": self.cpu_cores,
            "ram_mb": self.ram_mb,
            "disk_gb": self.disk_gb,
            "project_id": str(self.project_id),
            "server_id": str(self.server_id) if self.server_id else None,
            "custom_domain": self.custom_domain,
            "custom_domain_verified": self.custom_domain_verified,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
        return _drop(body, self.omitted)


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
    regenerates its files when a change affects them. Backups of the seeded world are
    history (their times are derived from ``created_at``); one taken on demand carries
    its own ``started_at`` / ``finished_at`` and ``task_id``.
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
    notes: str | None = None
    retention_type: str | None = None
    task_id: str | None = None
    started_at: datetime | None = None  # None: created_at (seeded history)
    finished_at: datetime | None = None  # None: derived from the size (seeded history)
    live: bool = False  # taken on demand: its status moves with the simulated clock

    @property
    def completed_at(self) -> datetime | None:
        """When the backup completed (None unless it is ``completed``)."""
        if self.status != "completed":
            return None
        if self.finished_at is not None:
            return self.finished_at
        return self.created_at + timedelta(seconds=30 + self.dump_size // 100_000)

    @property
    def shown_task_id(self) -> str | None:
        """The ``task_id`` the API shows (seeded failed/cancelled backups have one too)."""
        if self.task_id is not None:
            return self.task_id
        if self.status in ("failed", "cancelled"):
            return f"task-{self.seed % 100000:05d}"
        return None

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        """The backup as the API sends it (``detail``: as ``GET /backups/{id}`` does)."""
        completed = self.completed_at
        done = self.status == "completed"
        database = self.dump_size if done else None
        filestore = (self.filestore_size if self.has_filestore else 0) if done else None
        started = self.created_at if self.started_at is None and not self.live else self.started_at
        body: dict[str, Any] = {
            "id": str(self.id),
            "environment_id": str(self.environment_id),
            "status": self.status,
            "backup_type": self.backup_type,
            "database_size": database,
            "filestore_size": filestore,
            "total_size": (database or 0) + (filestore or 0) if completed else None,
            "compressed_size": None,
            "started_at": iso(started),
            "completed_at": iso(completed),
            "duration_seconds": int((completed - started).total_seconds())
            if completed and started
            else None,
            "expires_at": iso(self.created_at + timedelta(days=30)),
            "is_verified": completed is not None,
            "verified_at": iso(completed + timedelta(seconds=29)) if completed else None,
            "notes": self.notes,
            "created_at": iso(self.created_at),
        }
        if self.error_message is not None:
            body["error_message"] = self.error_message
        if self.shown_task_id is not None:
            body["task_id"] = self.shown_task_id
        if self.retention_type is not None:
            body["retention_type"] = self.retention_type
        if detail:
            body["environment_snapshot"] = {"odoo_version": "17.0", "name": "sim"}
        return body


_OPTIONAL_TEXT = (str, type(None))

#: Fields of a backup a test may change with ``update_backup``, and their types.
_BACKUP_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "backup_type": str,
    "error_message": _OPTIONAL_TEXT,
    "notes": _OPTIONAL_TEXT,
    "has_database": bool,
    "has_filestore": bool,
    "has_manifest": bool,
    "manifest_variant": str,
    "file_names": Mapping,
    "dump_size": int,
    "filestore_size": int,
}
EDITABLE_BACKUP_FIELDS = frozenset(_BACKUP_FIELD_TYPES)
#: Of those, the ones that change the stored files (so the files are made again).
FILE_FIELDS = frozenset(
    {"has_filestore", "manifest_variant", "file_names", "dump_size", "filestore_size"}
)

#: Fields of an environment a test may change with ``update_environment``.
_ENVIRONMENT_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "status": str,
    "url": _OPTIONAL_TEXT,
    "odoo_version": _OPTIONAL_TEXT,
    "branch": _OPTIONAL_TEXT,
    "last_commit": _OPTIONAL_TEXT,
    "custom_domain": _OPTIONAL_TEXT,
    "custom_domain_verified": (bool, type(None)),
    "omitted": frozenset,
}
EDITABLE_ENVIRONMENT_FIELDS = frozenset(_ENVIRONMENT_FIELD_TYPES)


def check_changes(what: str, changes: Mapping[str, Any]) -> None:
    """Refuse unknown fields or values of the wrong type for ``update_<what>``.

    Raises:
        ConfigurationError: naming the field (and the editable ones).
    """
    types = _BACKUP_FIELD_TYPES if what == "backup" else _ENVIRONMENT_FIELD_TYPES
    unknown = set(changes) - set(types)
    if unknown:
        raise ConfigurationError(
            f"update_{what}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"editable: {', '.join(sorted(types))}"
        )
    for name, value in changes.items():
        bad_size = name.endswith("_size") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        )
        if bad_size or not isinstance(value, types[name]):
            raise ConfigurationError(f"update_{what}: bad value for {name}: {value!r}")
