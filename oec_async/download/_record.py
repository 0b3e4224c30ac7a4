"""The completion record: proof that a backup folder holds a whole, verified download.

Written last (atomically) once every artifact is at its final name. A re-run that finds
it, with every file still of the recorded size and modification time, transfers nothing
and re-hashes nothing, unless asked to verify again.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from oec_async.download._layout import RECORD_NAME, write_atomically
from oec_async.download._writer import Hashes, hash_file

__all__ = ["CompletionRecord", "RecordedFile"]

logger = logging.getLogger("oec_async.download")

_VERSION = 1


@attrs.frozen
class RecordedFile:
    name: str
    size: int
    sha256: str
    verified: bool
    mtime_ns: int


def _sha256_of(path: Path, size: int) -> str:
    hashes = Hashes(set())
    hash_file(path, size, hashes)
    return hashes.hexdigest("sha256") or ""


@attrs.frozen
class CompletionRecord:
    backup_id: uuid.UUID
    environment_id: uuid.UUID
    files: dict[str, RecordedFile | None]  # artifact -> file, None when the backup has none

    @staticmethod
    def path_in(directory: Path) -> Path:
        return directory / RECORD_NAME

    @classmethod
    def load(cls, directory: Path, backup_id: uuid.UUID) -> CompletionRecord | None:
        try:
            raw: Any = json.loads(cls.path_in(directory).read_text())
            if raw.get("version") != _VERSION or uuid.UUID(raw["backup_id"]) != backup_id:
                return None
            files: dict[str, RecordedFile | None] = {}
            for artifact, entry in raw["files"].items():
                files[artifact] = (
                    None
                    if entry is None
                    else RecordedFile(
                        name=str(entry["name"]),
                        size=int(entry["size"]),
                        sha256=str(entry["sha256"]),
                        verified=bool(entry["verified"]),
                        mtime_ns=int(entry["mtime_ns"]),
                    )
                )
            return cls(backup_id, uuid.UUID(raw["environment_id"]), files)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, directory: Path) -> None:
        payload = {
            "version": _VERSION,
            "backup_id": str(self.backup_id),
            "environment_id": str(self.environment_id),
            "completed_at": datetime.now(UTC).isoformat(),
            "files": {
                artifact: None if entry is None else attrs.asdict(entry)
                for artifact, entry in self.files.items()
            },
        }
        write_atomically(
            self.path_in(directory), json.dumps(payload, indent=2).encode(), durable=True
        )

    def intact(self, directory: Path, *, rehash: bool) -> bool:
        """Every recorded file still there, same size and mtime (and same SHA-256 when
        ``rehash``). A file that fails a re-hash is removed: it is not what was verified."""
        for entry in self.files.values():
            if entry is None:
                continue
            path = directory / entry.name
            try:
                stat = path.stat()
            except OSError:
                return False
            if stat.st_size != entry.size or stat.st_mtime_ns != entry.mtime_ns:
                return False
            if rehash and _sha256_of(path, entry.size) != entry.sha256:
                logger.warning("%s no longer matches its recorded SHA-256; removing it", path)
                path.unlink(missing_ok=True)
                return False
        return True

    @staticmethod
    def forget(directory: Path) -> None:
        CompletionRecord.path_in(directory).unlink(missing_ok=True)
