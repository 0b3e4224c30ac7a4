"""The completion record: which files of a backup folder are verified, and whether all are.

Inside ``<backup_id>.part/`` it is a progress record (``complete: false``), rewritten each
time a file is verified and takes its final name: an interrupted download keeps those
files and fetches only the rest. Once every file is there it is written with ``complete:
true`` (fsynced) and the folder takes its final name ``<backup_id>/``. A re-run that finds
it, with every file still of the recorded size and modification time, transfers nothing
and re-hashes nothing, unless asked to verify again. The archive commands (``verify``,
``status``, ``prune``) read it to know which folders are complete.

The record is read back from disk, where anything may have been written: it is parsed as
hostile input. A record that is not exactly what this module writes (a file name that is
not a plain name of this folder, a size that is not a sane integer, a digest that is not
hex...) counts as no record at all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from oec_async.download._folder import Folder
from oec_async.download._layout import RECORD_NAME, is_plain_name

__all__ = ["CompletionRecord", "RecordedFile", "load_record", "read_record"]

logger = logging.getLogger("oec_async.download")

_VERSION = 1
_ARTIFACTS = frozenset({"manifest", "database", "filestore"})
_MAX_SIZE = 1 << 50  # the manifest parser's bound: 1 PiB
_MAX_RECORD = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHECKED = re.compile(r"^(sha256|sha512|sha384|sha1|md5):[0-9a-f]{32,128}$")


@attrs.frozen
class RecordedFile:
    """One verified file, as the record describes it."""

    name: str
    size: int
    sha256: str
    #: The manifest's checksum matched (False: only the size could be checked).
    verified: bool
    mtime_ns: int
    #: The manifest checksum it matched, as ``"<algorithm>:<hex>"`` (None: size only).
    checked: str | None = None

    def still_on_disk(self, info: os.stat_result | None) -> bool:
        """The file at its name has the recorded size and modification time."""
        return info is not None and (info.st_size, info.st_mtime_ns) == (self.size, self.mtime_ns)


def _int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("not an integer in range")
    return value


def _file(raw: Any) -> RecordedFile:
    if not isinstance(raw, dict):
        raise ValueError("a file entry is not an object")
    name, sha256, verified = raw.get("name"), raw.get("sha256"), raw.get("verified")
    checked = raw.get("checked")
    if not isinstance(name, str) or not is_plain_name(name):
        raise ValueError("a file name is not a plain name of this folder")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ValueError("a digest is not SHA-256 hex")
    if not isinstance(verified, bool):
        raise ValueError("verified is not a boolean")
    if checked is not None and not (isinstance(checked, str) and _CHECKED.match(checked)):
        raise ValueError("checked is not an algorithm and a digest")
    return RecordedFile(
        name=name,
        size=_int(raw.get("size"), 0, _MAX_SIZE),
        sha256=sha256,
        verified=verified,
        mtime_ns=_int(raw.get("mtime_ns"), 0, 1 << 63),
        checked=checked,
    )


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a timestamp is not a string")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("complete is not a boolean")
    return value


@attrs.frozen
class CompletionRecord:
    """What a backup folder holds: one entry per artifact (None when the backup has no
    such file; a progress record lists only the files done so far)."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    files: dict[str, RecordedFile | None]
    #: When the platform took the backup (what retention policies sort by).
    created_at: datetime | None = None
    #: When the download completed (set by :meth:`save` for a complete record).
    completed_at: datetime | None = None
    #: Every file is there and verified (False: a progress record of work in progress).
    complete: bool = True

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
            complete=_bool(raw.get("complete", True)),  # format 1 wrote only complete ones
        )

    def to_json(self) -> bytes:
        """The record as this module writes it."""
        completed = self.completed_at or (datetime.now(UTC) if self.complete else None)
        payload = {
            "version": _VERSION,
            "complete": self.complete,
            "backup_id": str(self.backup_id),
            "environment_id": str(self.environment_id),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "completed_at": completed.isoformat() if completed else None,
            "files": {
                artifact: None if entry is None else attrs.asdict(entry)
                for artifact, entry in self.files.items()
            },
        }
        return json.dumps(payload, indent=2).encode()

    def save(self, folder: Folder) -> None:
        """Write the record into ``folder`` atomically (a complete one durably)."""
        folder.write_atomically(RECORD_NAME, self.to_json(), durable=self.complete)


def _parse_or_none(data: bytes | None, where: Path) -> CompletionRecord | None:
    if data is None:
        return None
    try:
        return CompletionRecord.parse(data)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        logger.warning("%s: ignoring an unreadable completion record (%s)", where, exc)
        return None


def load_record(folder: Folder, backup_id: uuid.UUID) -> CompletionRecord | None:
    """The folder's record (complete or not) if it is valid and names ``backup_id``."""
    record = _parse_or_none(folder.read_bytes(RECORD_NAME, _MAX_RECORD), folder.path)
    return record if record is not None and record.backup_id == backup_id else None


def read_record(directory: Path) -> CompletionRecord | None:
    """The completion record of a complete backup folder, or None when it has none (or
    one that cannot be trusted, or only a progress record)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with Folder(fd, directory) as folder:
        record = _parse_or_none(folder.read_bytes(RECORD_NAME, _MAX_RECORD), directory)
    return record if record is not None and record.complete else None
