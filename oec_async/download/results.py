"""What a download returns: one :class:`DownloadedFile` per artifact, a
:class:`BackupDownload` per backup, and for a bulk pull a :class:`PullResult` per
environment (plus :class:`BatchProgress` snapshots while it runs)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

import attrs

from oec_async.errors import NoCompletedBackupError

__all__ = [
    "BackupDownload",
    "BatchProgress",
    "DownloadedFile",
    "Evidence",
    "PullResult",
    "PullStatus",
]

#: Where a file's ``verified`` claim comes from: ``"streamed"`` — hashed as it was
#: received by this call; ``"rehashed"`` — read back from disk and hashed by this call
#: (``reverify=True``, or a file kept from an interrupted run); ``"record"`` — taken from
#: the completion record of an earlier run (size and modification time unchanged, bytes
#: not re-read: pass ``reverify=True`` to re-hash).
Evidence = Literal["streamed", "rehashed", "record"]

#: ``"ok"``; ``"no_backup"`` — the environment has no completed backup yet (not a failure
#: of the pull); ``"failed"``.
PullStatus = Literal["ok", "no_backup", "failed"]


@attrs.frozen
class DownloadedFile:
    """One artifact on disk, at its final name."""

    #: ``"manifest"``, ``"database"`` or ``"filestore"``.
    artifact: str
    path: Path
    size: int
    sha256: str
    #: The manifest's checksum matched. For the manifest itself: it parsed, and names
    #: this backup (it is the root of trust; nothing signs it).
    verified: bool
    #: Bytes already on disk when this call started.
    resumed_from: int
    #: Bytes received over the network by this call (discarded ones included).
    bytes_transferred: int
    #: Where the ``verified`` claim comes from (see :data:`Evidence`).
    evidence: Evidence = "streamed"


@attrs.frozen
class BackupDownload:
    """One backup on disk: its folder and its files."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    #: ``dest/<environment_id>/<backup_id>``: it exists only once complete.
    directory: Path
    database: DownloadedFile | None
    filestore: DownloadedFile | None
    manifest: DownloadedFile | None
    #: True when the folder already held this backup, complete: nothing was fetched.
    skipped: bool = False
    #: What was found wrong on disk with an earlier complete copy (a file missing,
    #: changed, or no longer matching its SHA-256 with ``reverify``) and repaired.
    repaired: tuple[str, ...] = ()

    @property
    def files(self) -> list[DownloadedFile]:
        """The files present, manifest first."""
        return [f for f in (self.manifest, self.database, self.filestore) if f is not None]

    @property
    def verified(self) -> bool:
        """A manifest was present and every file matched it."""
        return self.manifest is not None and all(f.verified for f in self.files)

    @property
    def size(self) -> int:
        """Bytes on disk, all files together."""
        return sum(f.size for f in self.files)

    @property
    def bytes_transferred(self) -> int:
        """Bytes received over the network by this call, all files together."""
        return sum(f.bytes_transferred for f in self.files)


@attrs.frozen
class PullResult:
    """What happened to one environment of a bulk pull."""

    environment_id: uuid.UUID
    backup_id: uuid.UUID | None
    download: BackupDownload | None
    error: Exception | None
    #: Seconds this environment took.
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """The newest completed backup is on disk."""
        return self.error is None and self.download is not None

    @property
    def status(self) -> PullStatus:
        """``ok``, ``no_backup`` (nothing to pull yet: not a failure) or ``failed``."""
        if self.ok:
            return "ok"
        return "no_backup" if isinstance(self.error, NoCompletedBackupError) else "failed"


@attrs.frozen
class BatchProgress:
    """A snapshot of a whole bulk pull, for a progress bar or a metrics exporter."""

    environments_total: int
    environments_done: int  # finished, successfully or not
    environments_failed: int
    environments_in_flight: int
    bytes_done: int  # on disk, for files known so far
    bytes_total: int  # of files whose size is known so far
    bytes_transferred: int  # received over the network by this run
    elapsed: float
    #: Environments that have no completed backup yet (done, but not failed).
    environments_without_backup: int = 0

    @property
    def throughput(self) -> float:
        """Bytes received per second since the pull began."""
        return self.bytes_transferred / self.elapsed if self.elapsed > 0 else 0.0
