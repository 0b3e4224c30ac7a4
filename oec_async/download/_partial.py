"""A partial file and its sidecar: what is on disk, and which object those bytes are of.

The sidecar records the object's identity (ETag, Last-Modified, size), not its URL: a
freshly signed URL for the same object resumes, and a changed object never gets its new
bytes spliced onto the old ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from oec_async.download._layout import write_atomically

__all__ = ["ObjectIdentity", "PartialFile", "PartialState", "SegmentState"]

_SIDECAR_VERSION = 1

#: A segmented download's ranges as ``(start, end, position)``: bytes ``start..position``
#: of ``start..end`` are on disk. ``None`` for a plain partial, whose length is its offset.
SegmentState = list[tuple[int, int, int]]


@attrs.frozen
class ObjectIdentity:
    etag: str | None
    last_modified: str | None
    size: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], size: int | None) -> ObjectIdentity:
        return cls(
            etag=headers.get("ETag") or None,
            last_modified=headers.get("Last-Modified") or None,
            size=size,
        )

    @property
    def strong_etag(self) -> str | None:
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    @property
    def if_range(self) -> str | None:
        """The validator to send with ``If-Range``: a strong ETag, else the date."""
        return self.strong_etag or self.last_modified

    @property
    def resumable(self) -> bool:
        return self.if_range is not None and self.size is not None

    def same_object(self, other: ObjectIdentity) -> bool:
        """True unless a validator both sides know differs."""
        if self.etag and other.etag and self.etag != other.etag:
            return False
        if self.etag is None or other.etag is None:  # only then is the date meaningful
            lm_differs = self.last_modified and other.last_modified
            if lm_differs and self.last_modified != other.last_modified:
                return False
        return not (self.size is not None and other.size is not None and self.size != other.size)


@attrs.frozen
class PartialState:
    offset: int  # bytes on disk (for a segmented partial: the sum over its ranges)
    identity: ObjectIdentity | None
    segments: SegmentState | None = None


def _valid_segments(raw: Any, size: int) -> SegmentState | None:
    """The ranges, if they tile ``0..size`` exactly and every position is inside its range."""
    if not isinstance(raw, list) or not raw:
        return None
    segments: SegmentState = []
    expected_start = 0
    for item in sorted(raw, key=lambda r: r[0] if isinstance(r, list) and r else -1):
        if not (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
        ):
            return None
        start, end, position = item
        if start != expected_start or not start <= position <= end or end <= start:
            return None
        segments.append((start, end, position))
        expected_start = end
    return segments if expected_start == size else None


class PartialFile:
    """``<name>.part`` plus ``<name>.part.json``."""

    def __init__(self, part: Path, sidecar: Path) -> None:
        self.part = part
        self.sidecar = sidecar

    def load(self) -> PartialState:
        """Where to resume from; an empty state (and nothing left on disk) when the
        partial cannot be trusted."""
        try:
            size = self.part.stat().st_size
        except FileNotFoundError:
            self.sidecar.unlink(missing_ok=True)
            return PartialState(0, None)
        raw = self._read_sidecar()
        identity = self._identity(raw)
        if identity is None or not identity.resumable or size > (identity.size or 0):
            self.discard()
            return PartialState(0, None)
        if raw.get("segments") is not None:
            segments = _valid_segments(raw["segments"], identity.size or 0)
            if segments is None or size != identity.size:
                self.discard()
                return PartialState(0, None)
            done = sum(position - start for start, _, position in segments)
            return PartialState(done, identity, segments)
        return PartialState(size, identity)

    def _read_sidecar(self) -> dict[str, Any]:
        try:
            raw: Any = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("version") != _SIDECAR_VERSION:
            return {}
        return raw

    @staticmethod
    def _identity(raw: dict[str, Any]) -> ObjectIdentity | None:
        if not raw:
            return None
        size = raw.get("size")
        etag, last_modified = raw.get("etag"), raw.get("last_modified")
        if not (size is None or (isinstance(size, int) and size >= 0)):
            return None
        if not all(v is None or isinstance(v, str) for v in (etag, last_modified)):
            return None
        return ObjectIdentity(etag=etag, last_modified=last_modified, size=size)

    def save(self, identity: ObjectIdentity, segments: SegmentState | None = None) -> None:
        """Write the sidecar atomically (a crash leaves the old one or the new one)."""
        payload = json.dumps(
            {
                "version": _SIDECAR_VERSION,
                **attrs.asdict(identity),
                "segments": [list(s) for s in segments] if segments is not None else None,
            }
        )
        write_atomically(self.sidecar, payload.encode())

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)
