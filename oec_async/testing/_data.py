"""The simulator's world: environments, backups, and their generated files on disk.

Everything is derived from one seed, so a test (or a bug report) can name the exact
world it ran against.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "ARTIFACTS",
    "MANIFEST_VARIANTS",
    "SimBackup",
    "SimEnvironment",
    "StoredObject",
    "World",
]

ARTIFACTS = ("database", "filestore", "manifest")
DEFAULT_NAMES = {
    "database": "dump.sql",
    "filestore": "filestore.tar.gz",
    "manifest": "manifest.json",
}

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

_VARIANT_ALGORITHMS = {"sha512": "sha512", "md5": "md5"}
_BASE_TIME = datetime(2026, 5, 22, 18, 0, 0, tzinfo=UTC)
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


def _iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def _seeded_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@attrs.define
class StoredObject:
    """One file in simulated storage: bytes on disk plus the validators S3 would send."""

    path: Path
    size: int
    etag: str
    last_modified: datetime
    sha256: str

    @property
    def last_modified_http(self) -> str:
        return format_datetime(self.last_modified, usegmt=True)


@attrs.define
class SimBackup:
    """A backup as the simulator serves it; tests may change any field."""

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
    manifest_variant: str = "canonical"
    file_names: dict[str, str] = attrs.Factory(lambda: dict(DEFAULT_NAMES))
    version: int = 0  # bumped by change_object: new bytes, new ETag
    error_message: str | None = None
    objects: dict[str, StoredObject] = attrs.Factory(dict)

    @property
    def completed_at(self) -> datetime | None:
        if self.status != "completed":
            return None
        return self.created_at + timedelta(seconds=30 + self.dump_size // 100_000)

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
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
            "started_at": _iso(self.created_at),
            "completed_at": _iso(completed),
            "duration_seconds": int((completed - self.created_at).total_seconds())
            if completed
            else None,
            "expires_at": _iso(self.created_at + timedelta(days=30)),
            "is_verified": completed is not None,
            "verified_at": _iso(completed + timedelta(seconds=29)) if completed else None,
            "notes": None,
            "created_at": _iso(self.created_at),
        }
        if self.error_message is not None:
            body["error_message"] = self.error_message
        if self.status in ("failed", "cancelled"):
            body["task_id"] = f"task-{self.seed % 100000:05d}"
        if detail:
            body["environment_snapshot"] = {"odoo_version": "17.0", "name": "sim"}
        return body


@attrs.define
class SimEnvironment:
    id: uuid.UUID
    name: str
    backups: list[SimBackup] = attrs.Factory(list)  # newest first


_BLOCK = 16 * 1024 * 1024


def _dump_blocks(size: int, seed: int) -> Iterator[bytes]:
    """Random bytes after a dump header, written block by block (memory stays flat for the
    multi-GiB files of the benchmarks: past the first block, each block is the first one
    with its own counter stamped in, which keeps generation at memory speed)."""
    header = b"-- PostgreSQL database dump (oec-async simulator)\n"
    rng = random.Random(seed)
    base = header + rng.randbytes(max(0, min(size, _BLOCK) - len(header)))
    yield base[:size]
    position = len(base[:size])
    counter = 0
    while position < size:
        counter += 1
        stamp = f"-- block {seed}:{counter}\n".encode()
        block = (stamp + base[len(stamp) :])[: size - position]
        yield block
        position += len(block)


def _filestore_bytes(size: int, seed: int) -> bytes:
    """A real tar.gz holding random attachment files of roughly ``size`` bytes in all."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        remaining = max(size, 1)
        index = 0
        while remaining > 0:
            length = min(remaining, rng.randint(1024, 64 * 1024))
            data = rng.randbytes(length)
            info = tarfile.TarInfo(f"filestore/{index // 16:02x}/{index:04x}.bin")
            info.size = length
            info.mtime = int(_BASE_TIME.timestamp())
            tar.addfile(info, io.BytesIO(data))
            remaining -= length
            index += 1
    return buffer.getvalue()


def _write_object(path: Path, blocks: Iterable[bytes], algorithms: set[str]) -> _Written:
    hashers = {name: hashlib.new(name) for name in {"sha256", *algorithms}}
    size = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for block in blocks:
            handle.write(block)
            for hasher in hashers.values():
                hasher.update(block)
            size += len(block)
    return _Written(size, {name: h.hexdigest() for name, h in hashers.items()})


@attrs.frozen
class _Written:
    size: int
    digests: dict[str, str]


class World:
    """All environments and backups, and the files behind them (made on first use)."""

    def __init__(
        self,
        root: Path,
        *,
        seed: int,
        environments: int,
        backups_per_environment: int,
        dump_size: int,
        filestore_size: int,
    ) -> None:
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed)
        self.dump_size = dump_size
        self.filestore_size = filestore_size
        self.environments: dict[uuid.UUID, SimEnvironment] = {}
        self.backups: dict[uuid.UUID, SimBackup] = {}
        for index in range(environments):
            self.add_environment(backups=backups_per_environment, name=f"env-{index:03d}")

    # -- building the world ------------------------------------------------------------

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
        env = SimEnvironment(
            id=_seeded_uuid(self.rng), name=name or f"env-{len(self.environments)}"
        )
        self.environments[env.id] = env
        chosen = (
            list(statuses)
            if statuses is not None
            else [_STATUS_CYCLE[i % len(_STATUS_CYCLE)] for i in range(backups)]
        )
        start = _BASE_TIME - timedelta(hours=len(self.environments))
        for i, status in enumerate(chosen):
            backup = SimBackup(
                id=_seeded_uuid(self.rng),
                environment_id=env.id,
                status=status,
                backup_type=_TYPE_CYCLE[i % len(_TYPE_CYCLE)],
                created_at=start - timedelta(days=i),
                dump_size=self.dump_size if dump_size is None else dump_size,
                filestore_size=self.filestore_size if filestore_size is None else filestore_size,
                seed=self.rng.getrandbits(32),
                error_message="pg_dump exited with code 1" if status == "failed" else None,
            )
            env.backups.append(backup)
            self.backups[backup.id] = backup
        return env

    def latest_completed(self, env_id: uuid.UUID) -> SimBackup | None:
        env = self.environments.get(env_id)
        if env is None:
            return None
        return next((b for b in env.backups if b.status == "completed"), None)

    # -- files -------------------------------------------------------------------------

    def backup_dir(self, backup: SimBackup) -> Path:
        return self.root / "bucket" / str(backup.environment_id) / str(backup.id)

    def object_key(self, backup: SimBackup, artifact: str) -> str:
        """The URL path of an artifact under the storage root (its bucket key)."""
        return f"bucket/{backup.environment_id}/{backup.id}/{backup.file_names[artifact]}"

    def ensure_objects(self, backup: SimBackup) -> dict[str, StoredObject]:
        """Write the backup's files (dump, filestore, manifest) if not yet on disk."""
        if backup.objects:
            return backup.objects
        directory = self.backup_dir(backup)
        directory.mkdir(parents=True, exist_ok=True)
        seed = backup.seed + backup.version * 7919
        algorithms = {_VARIANT_ALGORITHMS.get(backup.manifest_variant, "sha256")}
        sources: dict[str, Iterable[bytes]] = {"database": _dump_blocks(backup.dump_size, seed)}
        if backup.has_filestore:
            sources["filestore"] = [_filestore_bytes(backup.filestore_size, seed + 1)]
        written = {
            artifact: _write_object(directory / backup.file_names[artifact], blocks, algorithms)
            for artifact, blocks in sources.items()
        }
        manifest = self._manifest_bytes(backup, written)
        written["manifest"] = _write_object(
            directory / backup.file_names["manifest"], [manifest], set()
        )
        now = datetime.now(UTC).replace(microsecond=0)
        for artifact, info in written.items():
            sha256 = info.digests["sha256"]
            backup.objects[artifact] = StoredObject(
                path=directory / backup.file_names[artifact],
                size=info.size,
                etag=f'"{sha256[:32]}"',
                last_modified=now,
                sha256=sha256,
            )
        return backup.objects

    def change_objects(self, backup: SimBackup) -> None:
        """New bytes for every file of the backup (and a matching manifest)."""
        backup.version += 1
        for obj in backup.objects.values():
            obj.path.unlink(missing_ok=True)
        backup.objects = {}
        self.ensure_objects(backup)

    def _manifest_bytes(self, backup: SimBackup, written: dict[str, _Written]) -> bytes:
        variant = backup.manifest_variant
        if variant == "invalid_json":
            return b'{"format_version": 1, "files": {"database": '
        if variant == "not_an_object":
            return b'["dump.sql"]'
        names = dict(backup.file_names)
        if variant == "traversal":
            names["database"] = "../../evil.sql"
        if variant == "absolute":
            names["database"] = "/etc/evil.sql"
        algorithm = _VARIANT_ALGORITHMS.get(variant, "sha256")
        entries = {
            artifact: {
                "filename": names[artifact],
                "size": info.size,
                "hex": info.digests[algorithm],
            }
            for artifact, info in written.items()
        }
        doc: dict[str, Any] = {
            "format_version": 1,
            "backup_id": str(backup.id),
            "environment_id": str(backup.environment_id),
            "created_at": _iso(backup.created_at),
            "odoo_version": "17.0",
        }
        if variant in ("files_list", "files_list_path"):
            name_key, size_key = (
                ("path", "size")
                if variant == "files_list_path"
                else (
                    "name",
                    "bytes",
                )
            )
            doc["files"] = [
                {
                    name_key: e["filename"],
                    size_key: e["size"],
                    **(
                        {"sha256": e["hex"]}
                        if variant == "files_list_path"
                        else {"checksum": f"sha256:{e['hex']}"}
                    ),
                }
                for e in entries.values()
            ]
        elif variant in ("checksums_map", "checksums_bare"):
            doc["files"] = {
                artifact: {"filename": e["filename"], "size": e["size"]}
                for artifact, e in entries.items()
            }
            doc["checksums"] = {
                e["filename"]: e["hex"] if variant == "checksums_bare" else f"sha256:{e['hex']}"
                for e in entries.values()
            }
        else:
            keys = {"short_keys": "db", "dump_key": "dump"}
            files: dict[str, Any] = {}
            for artifact, e in entries.items():
                key = keys.get(variant, "database") if artifact == "database" else artifact
                entry: dict[str, Any] = {"filename": e["filename"], "size": e["size"]}
                if variant in ("sha512", "md5"):
                    entry["checksum"] = f"{algorithm}:{e['hex']}"
                elif variant != "no_checksums":
                    entry["sha256"] = e["hex"]
                files[key] = entry
            doc["files"] = files
        return json.dumps(doc, indent=2).encode()
