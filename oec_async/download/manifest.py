"""Reading ``manifest.json``: tolerant of every known layout, strict about anything hostile.

The platform publishes no schema, so the parser accepts (API.md section 4):

- ``files`` as a map keyed by artifact (``database`` | ``db`` | ``dump``, ``filestore``)
  or as a list of objects named by ``name`` | ``filename`` | ``path``;
- sizes as ``size`` | ``bytes``; checksums as ``sha256`` (bare hex) or ``checksum``
  (``"sha256:<hex>"``, also ``sha512:``, ``sha1:``, ``md5:``, or bare sha256 hex);
- a top-level ``checksums`` map, file name -> ``"<algo>:<hex>"`` or bare sha256 hex.

It refuses, with :class:`~oec_async.errors.ManifestError`: anything that is not a JSON
object, names that leave the backup folder (absolute, ``..``, backslashes, NUL, over 255
bytes), negative or absurd sizes, unknown algorithms, malformed hex, duplicate entries,
and a manifest that belongs to another backup.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import attrs

from oec_async.errors import ManifestError

__all__ = ["ALGORITHMS", "Manifest", "ManifestEntry", "parse_manifest"]

#: Algorithm -> hex digest length. Anything else cannot be verified and is refused.
ALGORITHMS = {"sha256": 64, "sha512": 128, "sha384": 96, "sha1": 40, "md5": 32}
_KIND_KEYS = {
    "database": "database",
    "db": "database",
    "dump": "database",
    "filestore": "filestore",
}
_NAME_KEYS = ("filename", "name", "path", "file")
_SIZE_KEYS = ("size", "bytes", "size_bytes")
_MAX_SIZE = 1 << 50  # 1 PiB: anything above is a broken manifest, not a backup
_MAX_NAME = 255
_HEX = re.compile(r"^[0-9a-fA-F]+$")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@attrs.frozen
class ManifestEntry:
    """What the manifest says about one file."""

    name: str | None
    size: int | None
    algorithm: str | None  # a key of ALGORITHMS, or None when no checksum is given
    digest: str | None  # lower-case hex

    def new_hasher(self) -> Any:
        """A fresh hasher of the entry's algorithm (None when it gives no checksum)."""
        return hashlib.new(self.algorithm) if self.algorithm else None


@attrs.frozen
class Manifest:
    """A parsed manifest: the backup it names and its entries, by artifact kind and by file
    name."""

    backup_id: uuid.UUID | None
    environment_id: uuid.UUID | None
    by_kind: dict[str, ManifestEntry]
    by_name: dict[str, ManifestEntry]
    #: When the backup was taken, if the manifest says so (informational: never trusted
    #: for anything but sorting a local archive when the API gave no time).
    created_at: datetime | None = None

    def entry_for(self, artifact: str, filename: str, default_name: str) -> ManifestEntry | None:
        """The entry for an artifact: by kind key, else by its file name, else default."""
        if artifact in self.by_kind:
            return self.by_kind[artifact]
        return self.by_name.get(filename) or self.by_name.get(default_name)


def _safe_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError("a file entry has no usable name", artifact="manifest")
    if "\x00" in value or "\\" in value or len(value.encode()) > _MAX_NAME:
        raise ManifestError(
            "a file name is not a plain name (NUL, backslash or too long)", artifact="manifest"
        )
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or value.startswith("~"):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ManifestError(
            f"refusing file name {shown!r}: it points outside the backup folder",
            artifact="manifest",
        )
    if not path.name:  # "." names the folder itself, not a file in it
        raise ManifestError("a file entry has no usable name", artifact="manifest")
    return path.name


def _size(entry: dict[str, Any], where: str) -> int | None:
    for key in _SIZE_KEYS:
        if key in entry and entry[key] is not None:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ManifestError(f"{where}: size must be an integer", artifact="manifest")
            if not 0 <= value <= _MAX_SIZE:
                raise ManifestError(f"{where}: impossible size {value}", artifact="manifest")
            return value
    return None


def _parse_checksum(value: Any, where: str) -> tuple[str, str]:
    """``(algorithm, hex)`` from ``"<algo>:<hex>"`` or bare sha256 hex."""
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: checksum must be a string", artifact="manifest")
    text = value.strip()
    algorithm, sep, digest = text.partition(":")
    if not sep:
        algorithm, digest = "sha256", text
    algorithm = algorithm.lower().replace("-", "")
    if algorithm not in ALGORITHMS:
        raise ManifestError(
            f"{where}: unsupported checksum algorithm {algorithm[:20]!r}", artifact="manifest"
        )
    if len(digest) != ALGORITHMS[algorithm] or not _HEX.match(digest):
        raise ManifestError(f"{where}: malformed {algorithm} digest", artifact="manifest")
    return algorithm, digest.lower()


def _entry(raw: Any, where: str, extra_checksum: Any = None) -> ManifestEntry:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: expected an object", artifact="manifest")
    name = next((raw[k] for k in _NAME_KEYS if raw.get(k) is not None), None)
    safe = _safe_name(name) if name is not None else None
    checksum = None
    for algorithm in ALGORITHMS:  # {"sha256": "<hex>"} and friends
        if raw.get(algorithm) is not None:
            checksum = _parse_checksum(f"{algorithm}:{raw[algorithm]}", where)
            break
    if checksum is None and raw.get("checksum") is not None:
        checksum = _parse_checksum(raw["checksum"], where)
    if checksum is None and extra_checksum is not None:
        checksum = _parse_checksum(extra_checksum, where)
    return ManifestEntry(
        name=safe,
        size=_size(raw, where),
        algorithm=checksum[0] if checksum else None,
        digest=checksum[1] if checksum else None,
    )


def _optional_uuid(value: Any, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ManifestError(f"{field} is not a UUID", artifact="manifest") from None


def _optional_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _load(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes", artifact="manifest")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"manifest is not valid JSON ({exc})", artifact="manifest") from None
    except RecursionError:  # hostile nesting: a few KiB of brackets exhaust the stack
        raise ManifestError("manifest is nested too deeply", artifact="manifest") from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object", artifact="manifest")
    return doc


class _Entries:
    """The entries read so far, by kind and by name; a duplicate is refused."""

    def __init__(self) -> None:
        self.by_kind: dict[str, ManifestEntry] = {}
        self.by_name: dict[str, ManifestEntry] = {}

    def add(self, entry: ManifestEntry, kind: str | None) -> None:
        if kind is not None:
            if kind in self.by_kind:
                raise ManifestError(f"duplicate entry for {kind}", artifact="manifest")
            self.by_kind[kind] = entry
        if entry.name is not None:
            if entry.name in self.by_name:
                raise ManifestError(f"duplicate entry for {entry.name!r}", artifact="manifest")
            self.by_name[entry.name] = entry


def _read_files(files: Any, checksums: dict[str, Any], entries: _Entries) -> None:
    """``files`` as a map keyed by artifact, or as a list of named objects."""
    if isinstance(files, dict):
        for key, raw in files.items():
            where = f"files.{str(key)[:40]}"
            name = raw.get("filename") or raw.get("name") if isinstance(raw, dict) else None
            extra = checksums.get(PurePosixPath(name).name) if isinstance(name, str) else None
            entries.add(_entry(raw, where, extra), _KIND_KEYS.get(str(key).lower()))
    elif isinstance(files, list):
        for index, raw in enumerate(files):
            where = f"files[{index}]"
            entry = _entry(raw, where)
            if entry.name is None:
                raise ManifestError(f"{where}: entry has no name", artifact="manifest")
            if entry.digest is None and entry.name in checksums:
                entry = _entry(raw, where, checksums[entry.name])
            kind = raw.get("kind") or raw.get("type") if isinstance(raw, dict) else None
            entries.add(entry, _KIND_KEYS.get(str(kind).lower()) if kind else None)
    elif files is not None:
        raise ManifestError("'files' must be an object or a list", artifact="manifest")


def parse_manifest(data: bytes) -> Manifest:
    """Parse manifest bytes, or raise :class:`ManifestError` saying what is wrong."""
    doc = _load(data)
    checksums = doc.get("checksums") or {}
    if not isinstance(checksums, dict):
        raise ManifestError("'checksums' must map file names to checksums", artifact="manifest")
    safe_checksums = {_safe_name(name): value for name, value in checksums.items()}
    entries = _Entries()
    _read_files(doc.get("files"), safe_checksums, entries)
    for name, value in safe_checksums.items():  # names only the checksums map mentions
        if name not in entries.by_name:
            algorithm, digest = _parse_checksum(value, f"checksums.{name[:40]}")
            entries.add(
                ManifestEntry(name=name, size=None, algorithm=algorithm, digest=digest), None
            )
    return Manifest(
        backup_id=_optional_uuid(doc.get("backup_id"), "backup_id"),
        environment_id=_optional_uuid(doc.get("environment_id"), "environment_id"),
        by_kind=entries.by_kind,
        by_name=entries.by_name,
        created_at=_optional_time(doc.get("created_at")),
    )
