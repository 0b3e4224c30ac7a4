"""Re-hashing the local archive: are the copies on disk still what was downloaded?

For every complete backup folder, each file the completion record names is opened (never
through a symbolic link), its size compared and its bytes streamed through SHA-256 (plus
the manifest's own algorithm) in fixed-size blocks, so memory stays flat whatever the size:

- against the manifest beside it (``manifest.json``, re-read and re-parsed): size, and the
  checksum where the manifest has one;
- against the completion record: the SHA-256 computed while it was downloaded. This
  catches bit rot even in a file the manifest gives no checksum for.

A file the manifest has no checksum for is therefore *not* a problem: it is still checked
against the SHA-256 recorded at download time, and reported ``verified=False`` (as the
download was). ``strict=True`` makes it a problem, as ``download --strict`` does.

A folder without a completion record (an interrupted download, one in progress, or a
folder that is not ours) cannot be checked: it is reported as a problem, never re-hashed.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs

from oec_async.archive._inventory import BackupFolder, inventory
from oec_async.download._layout import DEFAULT_NAMES
from oec_async.download._record import RecordedFile
from oec_async.download._writer import Hashes, hash_range
from oec_async.download.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestEntry,
    parse_manifest,
)
from oec_async.errors import ManifestError

__all__ = ["VerifyResult", "iter_verify", "verify_archive", "verify_folder"]

_DATA_ARTIFACTS = ("database", "filestore")


@attrs.frozen
class VerifyResult:
    """The check of one backup folder."""

    directory: Path
    environment_id: uuid.UUID
    backup_id: uuid.UUID
    #: Nothing is wrong: every file is there and matches the manifest and the record.
    ok: bool
    #: What is wrong, one readable line each (``"dump.sql: missing"``).
    problems: tuple[str, ...]
    #: The folder had a completion record (only complete folders are re-hashed).
    complete: bool
    #: Every file matched a checksum of the manifest (not only the recorded SHA-256).
    verified: bool
    files_checked: int = 0
    bytes_checked: int = 0
    #: The hashes match, but a file's size or modification time is no longer the one
    #: recorded (touched, or copied without its times): ``status``, ``prune`` and
    #: ``latest`` do not count the backup as verified until a download re-checks it.
    touched: bool = False


class _Folder:
    """One complete folder being checked: its descriptor, and the problems found."""

    def __init__(self, folder: BackupFolder, dir_fd: int, *, strict: bool) -> None:
        self.folder = folder
        self.dir_fd = dir_fd
        self.strict = strict
        self.problems: list[str] = []
        self.verified = True
        self.files = 0
        self.bytes = 0

    def open(self, name: str) -> int | None:
        """A descriptor of the regular file ``name`` in the folder, or None (reported)."""
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.dir_fd
            )
        except FileNotFoundError:
            self.problems.append(f"{name}: missing")
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.problems.append(f"{name}: is a symbolic link, not the downloaded file")
            else:
                self.problems.append(f"{name}: cannot be opened ({exc.strerror})")
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.problems.append(f"{name}: is not a regular file")
            return None
        return fd

    def manifest(self, entry: RecordedFile) -> Manifest | None:
        fd = self.open(entry.name)
        if fd is None:
            return None
        try:
            size = os.fstat(fd).st_size
            if size > MAX_MANIFEST_BYTES:
                self.problems.append(f"{entry.name}: {size} bytes, too large for a manifest")
                return None
            data = os.pread(fd, size + 1, 0)
        except OSError as exc:
            self.problems.append(f"{entry.name}: read error ({exc.strerror})")
            return None
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += len(data)
        hashes = Hashes(set())
        hashes.update(data)
        if len(data) != entry.size or hashes.hexdigest("sha256") != entry.sha256:
            self.problems.append(f"{entry.name}: differs from the manifest that was downloaded")
        try:
            manifest = parse_manifest(data)
        except ManifestError as exc:
            self.problems.append(f"{entry.name}: cannot be read as a manifest ({exc})")
            return None
        for field in ("backup_id", "environment_id"):
            named = getattr(manifest, field)
            if named is not None and named != getattr(self.folder, field):
                self.problems.append(f"{entry.name}: belongs to another backup ({field} {named})")
        return manifest

    def data_file(self, artifact: str, entry: RecordedFile, manifest: Manifest | None) -> None:
        described = (
            manifest.entry_for(artifact, entry.name, DEFAULT_NAMES[artifact]) if manifest else None
        )
        fd = self.open(entry.name)
        if fd is None:
            self.verified = False
            return
        try:
            size = os.fstat(fd).st_size
            if described is not None and described.size is not None and size != described.size:
                self.problems.append(
                    f"{entry.name}: size {size} differs from the manifest's {described.size}"
                )
                return
            if size != entry.size:
                self.problems.append(
                    f"{entry.name}: size {size} differs from the {entry.size} downloaded"
                )
                return
            algorithm = described.algorithm if described is not None else None
            hashes = Hashes({algorithm} if algorithm else set())
            try:
                hash_range(fd, 0, size, hashes)
            except OSError as exc:
                self.problems.append(f"{entry.name}: read error ({exc.strerror or exc})")
                return
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += size
        self._compare(entry, hashes, described)

    def _compare(
        self, entry: RecordedFile, hashes: Hashes, described: ManifestEntry | None
    ) -> None:
        if described is not None and described.algorithm and described.digest:
            found = hashes.hexdigest(described.algorithm)
            if found != described.digest:
                self.problems.append(
                    f"{entry.name}: {described.algorithm} {found} differs from the "
                    f"manifest's {described.digest}"
                )
                self.verified = False
                return
        else:
            self.verified = False
            if self.strict:
                why = "there is no manifest" if described is None else "the manifest has none"
                self.problems.append(f"{entry.name}: no checksum to verify against ({why})")
        if hashes.hexdigest("sha256") != entry.sha256:
            self.problems.append(
                f"{entry.name}: sha256 {hashes.hexdigest('sha256')} differs from the "
                f"{entry.sha256} recorded when it was downloaded"
            )
            self.verified = False


def _not_checked(folder: BackupFolder) -> VerifyResult:
    if folder.locked:
        why = "a download is in progress (the folder is locked): not checked"
    else:
        why = (
            "incomplete: no completion record (an interrupted download, or not a folder of "
            "oec-async); not checked. Run the download again to finish it, or delete it"
        )
    return VerifyResult(
        directory=folder.directory,
        environment_id=folder.environment_id,
        backup_id=folder.backup_id,
        ok=False,
        problems=(why,),
        complete=False,
        verified=False,
    )


def verify_folder(folder: BackupFolder, *, strict: bool = False) -> VerifyResult:
    """Re-hash one backup folder (see the module's docstring for what is compared).

    Args:
        folder: a folder found by :func:`~oec_async.archive.inventory`.
        strict: a file without a manifest checksum is a problem.

    Returns:
        The result; ``ok`` is False when any problem was found.
    """
    record = folder.record
    if not folder.complete or record is None:
        return _not_checked(folder)
    try:
        dir_fd = os.open(folder.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        problem = f"cannot be opened ({exc.strerror})"
        return attrs.evolve(_not_checked(folder), problems=(problem,), complete=True)
    try:
        check = _Folder(folder, dir_fd, strict=strict)
        manifest_entry = record.files.get("manifest")
        manifest = check.manifest(manifest_entry) if manifest_entry is not None else None
        if manifest is None:
            check.verified = False
            if manifest_entry is None and strict:
                check.problems.append("the backup has no manifest to verify against")
        for artifact in _DATA_ARTIFACTS:
            entry = record.files.get(artifact)
            if entry is not None:
                check.data_file(artifact, entry, manifest)
    finally:
        os.close(dir_fd)
    return VerifyResult(
        directory=folder.directory,
        environment_id=folder.environment_id,
        backup_id=folder.backup_id,
        ok=not check.problems,
        problems=tuple(check.problems),
        complete=True,
        verified=check.verified and not check.problems,
        files_checked=check.files,
        bytes_checked=check.bytes,
        touched=not check.problems and not folder.intact,
    )


def iter_verify(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[VerifyResult]:
    """Check every backup folder at or under ``path``, yielding each result when it is
    known (a long check of a big archive shows progress). Offline and read-only.

    Raises:
        ConfigurationError: ``path`` is not a folder.
    """
    for folder in inventory(path):
        yield verify_folder(folder, strict=strict)


def verify_archive(path: str | os.PathLike[str], *, strict: bool = False) -> list[VerifyResult]:
    """Re-hash every backup folder at or under ``path`` (a destination root, an environment
    folder or one backup folder) against its manifest and completion record.

    Blocking file-system work: from async code, ``await asyncio.to_thread(verify_archive,
    path)``.

    Args:
        path: where to look.
        strict: a file without a manifest checksum is a problem (default: it is checked
            against the SHA-256 recorded at download time only, and reported unverified).

    Returns:
        One result per backup folder; all ``ok`` means the archive is intact.

    Raises:
        ConfigurationError: ``path`` is not a folder.
    """
    return list(iter_verify(path, strict=strict))
