"""A partial file and its sidecar: what is on disk, and which object those bytes are of.

The sidecar records the object's identity (ETag, Last-Modified, size), not its URL: a
freshly signed URL for the same object resumes, and a changed object never gets its new
bytes spliced onto the old ones. For a file fetched over several connections it also
records each range's position.

Crash safety: the sidecar is always written *before* the state it describes exists on
disk. A segmented file's sidecar (every range at its start) is written before the file is
preallocated, so a kill -9 between the two leaves a full-length file of zeros that the
sidecar says holds nothing yet — never one that looks complete. Sidecars of format 1,
written by versions without that ordering, are not trusted.

Everything read back is hostile input: a sidecar that is not exactly what this module
writes, or a ``.part`` that is not a regular file, is discarded and the file restarts.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from oec_async.download._folder import Folder
from oec_async.download._layout import partial_name, sidecar_name

__all__ = ["ObjectIdentity", "PartialFile", "PartialState", "SegmentState"]

_SIDECAR_VERSION = 2
_MAX_SIDECAR = 1024 * 1024
_MAX_SIZE = 1 << 50

#: A segmented download's ranges as ``(start, end, position)``: bytes ``start..position``
#: of ``start..end`` are on disk. ``None`` for a plain partial, whose length is its offset.
SegmentState = list[tuple[int, int, int]]


@attrs.frozen
class ObjectIdentity:
    """Which stored object some bytes are of: its validators and size."""

    etag: str | None
    last_modified: str | None
    size: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], size: int | None) -> ObjectIdentity:
        """The identity a response's headers give an object of ``size`` bytes."""
        return cls(
            etag=headers.get("ETag") or None,
            last_modified=headers.get("Last-Modified") or None,
            size=size,
        )

    @property
    def strong_etag(self) -> str | None:
        """The ETag if it is a strong one (a weak ETag may not validate a range)."""
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    @property
    def if_range(self) -> str | None:
        """The validator to send with ``If-Range``: a strong ETag, else the date."""
        return self.strong_etag or self.last_modified

    @property
    def resumable(self) -> bool:
        """Storage can confirm, by a validator, that a later request is of this object."""
        return self.if_range is not None and self.size is not None

    def same_object(self, other: ObjectIdentity) -> bool:
        """True unless a validator both sides know differs."""
        if self.etag and other.etag and self.etag != other.etag:
            return False
        if self.etag is None or other.etag is None:  # only then is the date meaningful
            both = self.last_modified and other.last_modified
            if both and self.last_modified != other.last_modified:
                return False
        return not (self.size is not None and other.size is not None and self.size != other.size)


@attrs.frozen
class PartialState:
    """Step 1's reading of a ``.part``: where to continue from, and of which object."""

    offset: int  # bytes on disk (for a segmented partial: the sum over its ranges)
    identity: ObjectIdentity | None
    segments: SegmentState | None = None

    @property
    def complete(self) -> bool:
        """The partial holds the whole object."""
        size = self.identity.size if self.identity else None
        return self.segments is None and size is not None and 0 < self.offset == size


_EMPTY = PartialState(0, None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_segments(raw: Any, size: int) -> SegmentState | None:
    """The ranges, if they tile ``0..size`` exactly and every position is inside its range."""
    if not isinstance(raw, list) or not raw:
        return None
    if not all(isinstance(i, list) and len(i) == 3 and all(map(_is_int, i)) for i in raw):
        return None
    segments: SegmentState = []
    expected_start = 0
    for start, end, position in sorted(raw):
        if start != expected_start or not start <= position <= end or end <= start:
            return None
        segments.append((start, end, position))
        expected_start = end
    return segments if expected_start == size else None


def _identity(raw: dict[str, Any]) -> ObjectIdentity | None:
    size = raw.get("size")
    etag, last_modified = raw.get("etag"), raw.get("last_modified")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_SIZE:
        return None
    if not all(v is None or (isinstance(v, str) and len(v) < 1024) for v in (etag, last_modified)):
        return None
    return ObjectIdentity(etag=etag, last_modified=last_modified, size=size)


class PartialFile:
    """``<name>.part`` plus ``<name>.part.json``, in one folder."""

    def __init__(self, folder: Folder, final: str) -> None:
        self.folder = folder
        self.part = partial_name(final)
        self.sidecar = sidecar_name(final)

    def load(self) -> PartialState:
        """Where to resume from; an empty state (and nothing left on disk) when the
        partial cannot be trusted."""
        info = self.folder.lstat(self.part)
        if info is None or not self.folder.is_file(self.part):
            self.discard()
            return _EMPTY
        raw = self._read_sidecar()
        identity = _identity(raw) if raw is not None else None
        if identity is None or identity.size is None or info.st_size > identity.size:
            self.discard()
            return _EMPTY
        if raw is not None and raw.get("segments") is not None:
            segments = _valid_segments(raw["segments"], identity.size)
            if segments is None or info.st_size != identity.size:
                self.discard()
                return _EMPTY
            done = sum(position - start for start, _, position in segments)
            return PartialState(done, identity, segments)
        return PartialState(info.st_size, identity)

    def _read_sidecar(self) -> dict[str, Any] | None:
        data = self.folder.read_bytes(self.sidecar, _MAX_SIDECAR)
        if data is None:
            return None
        try:
            raw: Any = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(raw, dict) or raw.get("version") != _SIDECAR_VERSION:
            return None
        return raw

    def save(self, identity: ObjectIdentity, segments: SegmentState | None = None) -> None:
        """Write the sidecar atomically (a crash leaves the old one or the new one)."""
        payload = json.dumps(
            {
                "version": _SIDECAR_VERSION,
                **attrs.asdict(identity),
                "segments": [list(s) for s in segments] if segments is not None else None,
            }
        )
        self.folder.write_atomically(self.sidecar, payload.encode())

    def open(self, *, truncate: bool = False) -> int:
        """The ``.part`` opened for reading and writing (created ``0600`` if missing)."""
        return self.folder.open_working_file(self.part, os.O_RDWR | (os.O_TRUNC if truncate else 0))

    def open_direct(self, opened: int) -> int | None:
        """The ``.part`` already open as ``opened``, opened a second time for direct
        writes (``O_DIRECT``: no copy into the page cache); None where the platform or
        the file system offers none, or if the name no longer is that file."""
        flag = getattr(os, "O_DIRECT", 0)
        if not flag:
            return None
        try:
            fd = self.folder.open_file(self.part, os.O_WRONLY | flag)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                return None  # tmpfs and some others refuse O_DIRECT
            raise
        mine, other = os.fstat(opened), os.fstat(fd)
        if (mine.st_dev, mine.st_ino) != (other.st_dev, other.st_ino):
            os.close(fd)
            return None
        return fd

    def truncate(self, length: int) -> None:
        """Cut the ``.part`` to ``length`` bytes."""
        fd = self.open()
        try:
            os.ftruncate(fd, length)
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Remove the partial and its sidecar (whatever sits at the ``.part`` name: a
        folder there is removed too, instead of an IsADirectoryError from unlink)."""
        self.folder.remove_tree(self.part)
        self.folder.unlink(self.sidecar)
