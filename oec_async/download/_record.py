"""The completion record: proof that a backup folder holds a whole, verified download.

Written last (atomically, fsynced) once every artifact is at its final name. A re-run that
finds it, with every file still of the recorded size and modification time, transfers
nothing and re-hashes nothing, unless asked to verify again. The archive commands
(``verify``, ``status``, ``prune``) read it to know which folders are complete.

The record is read back from disk, where anything may have been written: it is parsed as
hostile input. A record that is not exactly what this module writes (a file name that is
not a plain name of this folder, a size that is not a sane integer, a digest that is not
hex...) counts as no record at all: the folder is simply not complete.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from oec_async.download._layout import RECORD_NAME, is_plain_name, write_atomically
from oec_async.download._writer import Hashes, hash_file

__all__ = ["CompletionRecord", "RecordedFile", "read_record"]

logger = logging.getLogger("oec_async.download")

_VERSION = 1
_ARTIFACTS = frozenset({"manifest", "database", "filestore"})
_MAX_SIZE = 1 << 50  # the manifest parser's bound: 1 PiB
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class RecordedFile:
    """One verified file of a complete download, as the record describes it."""

    name: str
    size: int
    sha256: str
    verified: bool
    mtime_ns: int


def _sha256_of(path: Path, size: int) -> str:
    hashes = Hashes(set())
    hash_file(path, size, hashes)
    return hashes.hexdigest("sha256") or ""


def _int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("not an integer in range")
    return value


def _file(raw: Any) -> RecordedFile:
    if not isinstance(raw, dict):
        raise ValueError("a file entry is not an object")
    name, sha256, verified = raw.get("name"), raw.get("sha256"), raw.get("verified")
    if not isinstance(name, str) or not is_plain_name(name):
        raise ValueError("a file name is not a plain name of this folder")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ValueError("a digest is not SHA-256 hex")
    if not isinstance(verified, bool):
        raise ValueError("verified is not a boolean")
    return RecordedFile(
        name=name,
        size=_int(raw.get("size"), 0, _MAX_SIZE),
        sha256=sha256,
        verified=verified,
        mtime_ns=_int(raw.get("mtime_ns"), 0, 1 << 63),
    )


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a timestamp is not a string")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@attrs.frozen
class CompletionRecord:
    """What a complete backup folder holds: one entry per artifact (None when the backup
    has no such file), the backup's creation time and when the download completed."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    files: dict[str, RecordedFile | None]
    #: When the platform took the backup (what retention policies sort by).
    created_at: datetime | None = None
    #: When this download completed (set by :meth:`save`).
    completed_at: datetime | None = None

    @staticmethod
    def path_in(directory: Path) -> Path:
        return directory / RECORD_NAME

    @classmethod
    def parse(cls, data: bytes) -> CompletionRecord:
        """The record in ``data``; ``ValueError`` for anything this module did not write."""
        raw: Any = json.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != _VERSION:
            raise ValueError("not a completion record of a known version")
        files_raw = raw.get("files")
        if not isinstance(files_raw, dict) or not set(files_raw) <= _ARTIFACTS:
            raise ValueError("files is not a map of the three artifacts")
        files = {a: None if e is None else _file(e) for a, e in files_raw.items()}
        names = [f.name.casefold() for f in files.values() if f is not None]
        if len(set(names)) != len(names):
            raise ValueError("two artifacts share a file name")
        return cls(
            backup_id=uuid.UUID(str(raw.get("backup_id"))),
            environment_id=uuid.UUID(str(raw.get("environment_id"))),
            files=files,
            created_at=_timestamp(raw.get("created_at")),
            completed_at=_timestamp(raw.get("completed_at")),
        )

    @classmethod
    def load(cls, directory: Path, backup_id: uuid.UUID) -> CompletionRecord | None:
        """The folder's record if it is valid and names ``backup_id``; else None."""
        record = read_record(directory)
        return record if record is not None and record.backup_id == backup_id else None

    def save(self, directory: Path) -> None:
        payload = {
            "version": _VERSION,
            "backup_id": str(self.backup_id),
            "environment_id": str(self.environment_id),
            "created_at": self.created_at.isoformat() if self.created_at else None,
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
                stat = path.lstat()
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


def read_record(directory: Path) -> CompletionRecord | None:
    """The completion record of a backup folder, or None when it has none (or one that
    cannot be trusted: it is then logged and treated as absent)."""
    try:
        data = CompletionRecord.path_in(directory).read_bytes()
    except OSError:
        return None
    try:
        return CompletionRecord.parse(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        logger.warning("%s: ignoring an unreadable completion record (%s)", directory, exc)
        return None
