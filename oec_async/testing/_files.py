"""The files behind each backup: a dump, a real tar.gz filestore and a manifest, on disk.

They are generated from the backup's seed the first time something asks for them, so a
world of a thousand backups costs nothing until a test downloads one.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import tarfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import attrs

from oec_async.testing._entities import BASE_TIME, SimBackup, iso

__all__ = ["ObjectStore", "StoredObject"]

_BLOCK = 16 * 1024 * 1024
_VARIANT_ALGORITHMS = {"sha512": "sha512", "md5": "md5"}


@attrs.frozen
class StoredObject:
    """One file in simulated storage: bytes on disk plus the validators S3 would send."""

    path: Path
    size: int
    etag: str
    last_modified: datetime
    sha256: str

    @property
    def last_modified_http(self) -> str:
        """``Last-Modified`` as an HTTP date."""
        return format_datetime(self.last_modified, usegmt=True)


class ObjectStore:
    """The storage bucket under ``root``: one folder per backup, made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects: dict[uuid.UUID, dict[str, StoredObject]] = {}

    def object_key(self, backup: SimBackup, artifact: str) -> str:
        """The URL path of an artifact under the storage root (its bucket key)."""
        return f"bucket/{backup.environment_id}/{backup.id}/{backup.file_names[artifact]}"

    def has_files(self, backup_id: uuid.UUID) -> bool:
        """Whether the backup's files have been written."""
        return backup_id in self._objects

    def objects(self, backup: SimBackup) -> dict[str, StoredObject]:
        """The backup's files (dump, filestore if any, manifest), written if not yet."""
        existing = self._objects.get(backup.id)
        if existing is not None:
            return existing
        directory = self.root / "bucket" / str(backup.environment_id) / str(backup.id)
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
        manifest = _manifest_bytes(backup, written)
        written["manifest"] = _write_object(
            directory / backup.file_names["manifest"], [manifest], set()
        )
        now = datetime.now(UTC).replace(microsecond=0)
        objects = {}
        for artifact, info in written.items():
            sha256 = info.digests["sha256"]
            objects[artifact] = StoredObject(
                path=directory / backup.file_names[artifact],
                size=info.size,
                etag=f'"{sha256[:32]}"',
                last_modified=now,
                sha256=sha256,
            )
        self._objects[backup.id] = objects
        return objects

    def discard(self, backup: SimBackup) -> None:
        """Delete the backup's files; the next :meth:`objects` writes them again."""
        if self._objects.pop(backup.id, None) is not None:
            directory = self.root / "bucket" / str(backup.environment_id) / str(backup.id)
            shutil.rmtree(directory, ignore_errors=True)


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
            info.mtime = int(BASE_TIME.timestamp())
            tar.addfile(info, io.BytesIO(data))
            remaining -= length
            index += 1
    return buffer.getvalue()


@attrs.frozen
class _Written:
    size: int
    digests: dict[str, str]


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


def _manifest_bytes(backup: SimBackup, written: dict[str, _Written]) -> bytes:
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
        artifact: {"filename": names[artifact], "size": info.size, "hex": info.digests[algorithm]}
        for artifact, info in written.items()
    }
    doc: dict[str, Any] = {
        "format_version": 1,
        "backup_id": str(backup.id),
        "environment_id": str(backup.environment_id),
        "created_at": iso(backup.created_at),
        "odoo_version": "17.0",
    }
    if variant in ("files_list", "files_list_path"):
        name_key, size_key = ("path", "size") if variant == "files_list_path" else ("name", "bytes")
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
