"""The two kinds of artifact a backup has, and what each does at steps 1 and 4.

- :class:`ManifestRules`: the manifest is the root of trust. It is fetched on every run
  that is not already complete (it is a few KiB, and it is what tells whether the other
  files are still current), must parse and name this backup, and before it takes its
  final name it settles the other files an earlier run left at their final names
  (:meth:`ManifestRules.settle_finals`): every file under a final name always matches the
  manifest beside it.
- :class:`DataRules`: the dump and the filestore are verified against the manifest, and a
  file an earlier run verified is kept without a byte transferred when it is still what
  the manifest describes.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Callable

from oec_async.download._folder import Folder
from oec_async.download._partial import ObjectIdentity, PartialFile
from oec_async.download._record import CompletionRecord, RecordedFile
from oec_async.download._transfer import Received
from oec_async.download._verify import (
    Check,
    ManifestSlot,
    checksum_label,
    entry_for,
    judge_file,
    recorded_file_still_good,
)
from oec_async.download.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from oec_async.download.results import DownloadedFile
from oec_async.errors import IntegrityError, ManifestError
from oec_async.models import Backup

__all__ = ["DataRules", "FileLog", "ManifestRules"]

logger = logging.getLogger("oec_async.download")


class FileLog:
    """The files of the work folder known to be verified: the progress record, rewritten
    (atomically) each time one more is at its final name."""

    def __init__(self, folder: Folder, backup: Backup, files: dict[str, RecordedFile]) -> None:
        self.folder = folder
        self.backup = backup
        self.files = dict(files)
        self._lock = asyncio.Lock()

    def record(self, *, complete: bool, artifacts: tuple[str, ...] = ()) -> CompletionRecord:
        """The record of the files logged; a complete one lists every one of ``artifacts``."""
        files: dict[str, RecordedFile | None] = dict(self.files)
        if complete:  # the backup's missing artifacts are recorded as absent
            files = {a: self.files.get(a) for a in artifacts}
        return CompletionRecord(
            self.backup.id,
            self.backup.environment_id,
            files,
            created_at=self.backup.created_at,
            complete=complete,
        )

    def forget(self, artifact: str) -> None:
        """The artifact's file is no longer what was verified (it will be again, or fetched)."""
        self.files.pop(artifact, None)

    async def add(self, artifact: str, entry: RecordedFile) -> None:
        """One more file at its final name, verified: rewrite the progress record."""
        async with self._lock:
            self.files[artifact] = entry
            await asyncio.to_thread(self.record(complete=False).save, self.folder)


class ManifestRules:
    """Steps 1 and 4 for the manifest."""

    max_size: int | None = MAX_MANIFEST_BYTES

    def __init__(
        self,
        *,
        folder: Folder,
        backup: Backup,
        names: dict[str, str],
        log: FileLog,
        kept: dict[str, RecordedFile],
    ) -> None:
        self.folder = folder
        self.backup = backup
        self.names = names
        self.log = log
        self.kept = kept
        self.parsed: Manifest | None = None

    def algorithms(self) -> set[str]:
        return set()

    def expected_size(self) -> int | None:
        return None

    async def algorithms_to_verify(self) -> set[str]:
        return set()

    async def kept_from_earlier(self) -> DownloadedFile | None:
        return None  # always read again: see the module docstring

    async def checksum_will_verify(self) -> bool:
        return False

    async def verify(self, received: Received, digest: Callable[[str], str]) -> Check:
        part = PartialFile(self.folder, self.names["manifest"])
        data = await asyncio.to_thread(self.folder.read_bytes, part.part, MAX_MANIFEST_BYTES)
        try:
            manifest = parse_manifest(data if data is not None else b"")
            self._check_names_this_backup(manifest)
        except ManifestError:
            part.discard()  # a refused manifest is not kept, even as a partial
            raise
        await asyncio.to_thread(self.settle_finals, manifest)
        self.parsed = manifest  # handed to the other transfers once it has its final name
        return Check.CHECKSUM

    def _check_names_this_backup(self, manifest: Manifest) -> None:
        for field, expected in (
            ("backup_id", self.backup.id),
            ("environment_id", self.backup.environment_id),
        ):
            found = getattr(manifest, field)
            if found is not None and found != expected:
                raise ManifestError(
                    f"the manifest is for another backup ({field} {found})", artifact="manifest"
                )

    def settle_finals(self, manifest: Manifest) -> None:
        """Before this manifest takes its final name: keep each earlier final file that is
        on record and still what it describes; turn one that is not on record back into a
        complete partial when a checksum can vouch for it (it is re-hashed, not fetched);
        remove the others."""
        for artifact, name in self.names.items():
            info = self.folder.lstat(name)
            if artifact == "manifest" or info is None:
                continue
            recorded = self.log.files.get(artifact)
            entry = entry_for(manifest, artifact, name)
            regular = stat.S_ISREG(info.st_mode)
            if (
                regular
                and recorded is not None
                and recorded.name == name
                and recorded.still_on_disk(info)
                and recorded_file_still_good(recorded, entry)
            ):
                self.kept[artifact] = recorded
                continue
            self.log.forget(artifact)
            if regular and checksum_label(entry) is not None:
                logger.info("%s: not on record; re-hashing it instead of fetching it", name)
                partial = PartialFile(self.folder, name)
                partial.discard()
                partial.save(ObjectIdentity(None, None, info.st_size))  # sidecar first
                self.folder.replace(name, partial.part)
            else:
                logger.warning("%s: no longer what the manifest describes; removing it", name)
                self.folder.unlink(name)

    async def done(self, file: DownloadedFile, check: Check, mtime_ns: int) -> None:
        await self.log.add(
            "manifest",
            RecordedFile(file.path.name, file.size, file.sha256, True, mtime_ns),
        )


class DataRules:
    """Steps 1 and 4 for the dump or the filestore."""

    max_size: int | None = None

    def __init__(
        self,
        *,
        artifact: str,
        name: str,
        folder: Folder,
        manifest: ManifestSlot,
        log: FileLog,
        kept: dict[str, RecordedFile],
        strict: bool,
        keep: Callable[[str, RecordedFile], DownloadedFile],
    ) -> None:
        self.artifact = artifact
        self.name = name
        self.folder = folder
        self.manifest = manifest
        self.log = log
        self.kept = kept
        self.strict = strict
        self._keep = keep

    def algorithms(self) -> set[str]:
        entry = entry_for(self.manifest.known(), self.artifact, self.name)
        return {entry.algorithm} if entry is not None and entry.algorithm else set()

    def expected_size(self) -> int | None:
        entry = entry_for(self.manifest.known(), self.artifact, self.name)
        return entry.size if entry is not None else None

    async def algorithms_to_verify(self) -> set[str]:
        entry = entry_for(await self.manifest.get(), self.artifact, self.name)
        return {entry.algorithm} if entry is not None and entry.algorithm else set()

    async def kept_from_earlier(self) -> DownloadedFile | None:
        manifest = await self.manifest.get()
        if manifest is None:  # nothing can vouch for it
            self.folder.unlink(self.name)
            return None
        recorded = self.kept.get(self.artifact)
        if recorded is None or not recorded.still_on_disk(self.folder.lstat(self.name)):
            return None
        if self.strict and not recorded.verified:
            raise IntegrityError(
                f"{self.name} is on disk, but the manifest has no checksum for it and strict=True",
                artifact=self.artifact,
            )
        await self.log.add(self.artifact, recorded)
        return self._keep(self.artifact, recorded)

    async def checksum_will_verify(self) -> bool:
        manifest = await self.manifest.get()
        return checksum_label(entry_for(manifest, self.artifact, self.name)) is not None

    async def verify(self, received: Received, digest: Callable[[str], str]) -> Check:
        manifest = await self.manifest.get()
        return judge_file(
            manifest is not None,
            entry_for(manifest, self.artifact, self.name),
            received.size,
            digest,
            strict=self.strict,
            artifact=self.artifact,
        )

    async def done(self, file: DownloadedFile, check: Check, mtime_ns: int) -> None:
        entry = entry_for(self.manifest.known(), self.artifact, self.name)
        checked = checksum_label(entry) if check is Check.CHECKSUM else None
        await self.log.add(
            self.artifact,
            RecordedFile(file.path.name, file.size, file.sha256, file.verified, mtime_ns, checked),
        )
