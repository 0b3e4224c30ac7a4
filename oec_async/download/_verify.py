"""Step 4's rules: does a complete file match what the manifest says? And may a file
verified by an earlier run be kept as it is?

Pure functions of the manifest entry and what was computed, so each rule is read (and
unit-tested) in one place.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from oec_async.download._layout import DEFAULT_NAMES
from oec_async.download._record import RecordedFile
from oec_async.download._signals import Mismatch
from oec_async.download.manifest import Manifest, ManifestEntry
from oec_async.errors import IntegrityError, ManifestError

__all__ = [
    "Check",
    "ManifestSlot",
    "checksum_label",
    "entry_for",
    "judge_file",
    "recorded_file_still_good",
]


class Check(enum.Enum):
    """How well a file was checked."""

    #: Its size and checksum match the manifest.
    CHECKSUM = "checksum"
    #: The manifest has no checksum for it: only its size (if given) was checked.
    SIZE = "size"
    #: There is no manifest: nothing could be checked.
    NOTHING = "nothing"

    @property
    def verified(self) -> bool:
        """The manifest's checksum vouches for the file."""
        return self is Check.CHECKSUM


def entry_for(manifest: Manifest | None, artifact: str, filename: str) -> ManifestEntry | None:
    """The manifest's entry for an artifact, by kind, else by file name."""
    if manifest is None:
        return None
    return manifest.entry_for(artifact, filename, DEFAULT_NAMES[artifact])


def checksum_label(entry: ManifestEntry | None) -> str | None:
    """``"<algorithm>:<hex>"`` of the entry's checksum, or None when it gives none."""
    if entry is None or entry.algorithm is None or entry.digest is None:
        return None
    return f"{entry.algorithm}:{entry.digest}"


def judge_file(
    manifest_present: bool,
    entry: ManifestEntry | None,
    size: int,
    digest: Callable[[str], str],
    *,
    strict: bool,
    artifact: str,
) -> Check:
    """The check a complete file of ``size`` bytes passes; ``digest(algorithm)`` gives its
    hex digest. Raises :class:`Mismatch` when it differs from the manifest (the caller
    fetches it once more), :class:`IntegrityError` when ``strict`` and nothing can verify
    it."""
    if entry is not None and entry.size is not None and entry.size != size:
        raise Mismatch(f"size {size} differs from manifest's {entry.size}")
    if entry is not None and entry.algorithm is not None and entry.digest is not None:
        found = digest(entry.algorithm)
        if found != entry.digest:
            raise Mismatch(f"{entry.algorithm} {found} differs from manifest's {entry.digest}")
        return Check.CHECKSUM
    if strict:
        why = "the manifest has no checksum" if manifest_present else "there is no manifest"
        raise IntegrityError(
            f"{why} for this file and strict=True; the complete file is kept as .part",
            artifact=artifact,
        )
    return Check.SIZE if manifest_present else Check.NOTHING


def recorded_file_still_good(recorded: RecordedFile, entry: ManifestEntry | None) -> bool:
    """A file an earlier run verified (as ``recorded``) is what ``entry`` of the current
    manifest describes: same size, and verified against the same checksum."""
    if entry is not None and entry.size is not None and entry.size != recorded.size:
        return False
    return recorded.checked == checksum_label(entry)


class ManifestSlot:
    """The parsed manifest, once it is at its final name; awaited by the data transfers
    (to verify, and to decide what of an earlier run they may keep)."""

    def __init__(self) -> None:
        self._future: asyncio.Future[Manifest | None] = asyncio.get_running_loop().create_future()

    def set(self, manifest: Manifest | None) -> None:
        """The manifest is at its final name (None: the backup has none)."""
        if not self._future.done():
            self._future.set_result(manifest)

    def fail(self, exc: BaseException) -> None:
        """The manifest could not be had: everyone waiting gets a ``ManifestError``."""
        if not self._future.done():
            self._future.set_exception(
                ManifestError(f"the manifest could not be fetched: {exc}", artifact="manifest")
            )
            self._future.exception()  # retrieved here: the manifest task reports it

    def known(self) -> Manifest | None:
        """The manifest if it is already there (None: not yet, or there is none)."""
        if self._future.done() and self._future.exception() is None:
            return self._future.result()
        return None

    @property
    def settled(self) -> bool:
        """The manifest (or its absence) is known."""
        return self._future.done() and self._future.exception() is None

    async def get(self) -> Manifest | None:
        """Wait for the manifest (None: the backup has none)."""
        return await self._future
