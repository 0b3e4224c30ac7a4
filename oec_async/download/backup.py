"""Downloading one backup: its manifest, dump and filestore, concurrently and verified.

The steps of :func:`download_backup`:

1. **Resolve** the backup (one API call when only an id is given: the folder is named
   after its environment).
2. **Lock** it: ``dest/<environment_id>/`` is opened (created ``0700``, never through a
   symlink) and ``.<backup_id>.lock`` in it locked, so two processes never write the
   same files.
3. **Already complete?** ``<backup_id>/`` with its completion record, every file of the
   recorded size and modification time (re-hashed if ``reverify``): return at once, no
   URL requested, no byte transferred. A damaged one says what is wrong (a warning and a
   ``"repair"`` event) and goes back to ``<backup_id>.part/`` for repair.
4. **Ask for URLs**, before any folder of the backup exists: a backup that cannot be
   downloaded (not completed, say) leaves nothing behind.
5. **Transfer** in ``<backup_id>.part/``: one :class:`~._transfer.ArtifactTransfer` per
   URL, all at once. The manifest is tiny and lands first; the dump and filestore hash
   while they stream and are checked against it. Each file, once verified, takes its
   final name and is added to the progress record, so an interrupted run keeps it.
6. **Complete**: the completion record is written (fsynced) and the folder renamed to
   ``<backup_id>/`` in one step: a folder with that name is always complete.

Any failure cancels the sibling transfers and leaves the work folder for a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Collection
from os import PathLike
from pathlib import Path
from typing import Any

import aiohttp

from oec_async._config import coerce_uuid
from oec_async._retry import RetryPolicy
from oec_async.download._disk import SpaceLedger, is_out_of_space
from oec_async.download._folder import Folder
from oec_async.download._layout import (
    ARTIFACTS,
    artifact_filenames,
    lock_name,
    staging_name,
)
from oec_async.download._lock import FolderLock
from oec_async.download._record import CompletionRecord, RecordedFile, load_record
from oec_async.download._rules import DataRules, FileLog, ManifestRules
from oec_async.download._source import BackupSource
from oec_async.download._transfer import ArtifactRules, ArtifactTransfer, Shared
from oec_async.download._urls import URLSource, url_of
from oec_async.download._verify import ManifestSlot
from oec_async.download._writer import Hashes, hash_range
from oec_async.download.options import DownloadOptions
from oec_async.download.progress import ProgressCallback, ProgressEvent
from oec_async.download.results import BackupDownload, DownloadedFile, Evidence
from oec_async.errors import (
    DownloadError,
    InsufficientSpaceError,
    IntegrityError,
    InvalidResponseError,
)
from oec_async.models import Backup

__all__ = ["download_backup"]

logger = logging.getLogger("oec_async.download")


async def download_backup(
    source: BackupSource,
    backup_or_id: Backup | uuid.UUID | str,
    dest: str | PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    options: DownloadOptions | None = None,
    ledger: SpaceLedger | None = None,
    **overrides: Any,
) -> BackupDownload:
    """See :meth:`oec_async.OECClient.download_backup`."""
    opts = (options or DownloadOptions()).with_overrides(overrides)
    backup = await _resolve(source, backup_or_id)
    where = Path(dest) / str(backup.environment_id) / str(backup.id)
    try:
        return await _download(
            source, backup, Path(dest), opts, progress, ledger or SpaceLedger(opts.min_free_space)
        )
    except OSError as exc:
        if isinstance(exc, aiohttp.ClientError):  # a network error is not about the disk
            raise
        # A read-only disk, a permission, a path that is a file: say which, plainly.
        if is_out_of_space(exc):
            raise InsufficientSpaceError(
                f"no space left in {where}; partial files are kept for a resume"
            ) from exc
        target = exc.filename or where
        raise DownloadError(f"cannot write in {target}: {exc.strerror or exc}") from exc


async def _resolve(source: BackupSource, backup_or_id: Backup | uuid.UUID | str) -> Backup:
    if isinstance(backup_or_id, Backup):
        return backup_or_id
    wanted = coerce_uuid(backup_or_id, "backup_or_id")
    backup = await source.get_backup(wanted)
    if backup.id != wanted:  # the answer must be about the question
        raise InvalidResponseError(
            f"asked for backup {wanted}, the API answered with backup {backup.id}",
            status=200,
            method="GET",
            path=f"/backups/{wanted}",
        )
    return backup


class _Place:
    """``dest`` and ``dest/<environment_id>``, open; the environment folder is removed
    again at the end if this call made it and nothing was put in it."""

    def __init__(self, dest: Path, environment_id: uuid.UUID) -> None:
        self.root = Folder.open_root(dest)
        self.env_name = str(environment_id)
        try:
            self.made_env = self.root.lstat(self.env_name) is None
            env = self.root.subfolder(self.env_name, create=True, private=False)
            assert env is not None  # noqa: S101 - create=True
            self.env = env
        except BaseException:
            self.root.close()
            raise

    def close(self) -> None:
        self.env.close()
        if self.made_env:
            self.root.rmdir_if_empty(self.env_name)
        self.root.close()


#: How many times an environment folder removed under us is made again (see below).
_PLACE_ATTEMPTS = 3


@contextlib.asynccontextmanager
async def _locked_place(
    dest: Path, environment_id: uuid.UUID, backup_id: uuid.UUID, lock_timeout: float
) -> AsyncIterator[_Place]:
    """``dest/<environment_id>`` open, with the backup's lock held in it.

    Another download that made the environment folder removes it again at its end if it
    put nothing there: if that happens between our opening the folder and creating the
    lock file in it (the lock file then keeps it), the folder is made again.
    """
    for attempt in range(1, _PLACE_ATTEMPTS + 1):
        place = await asyncio.to_thread(_Place, dest, environment_id)
        try:
            lock = FolderLock(place.env, lock_name(backup_id), timeout=lock_timeout)
            try:
                await lock.acquire()
            except FileNotFoundError:
                if attempt == _PLACE_ATTEMPTS or not place.env.removed():
                    raise
                logger.debug("%s was removed by another download; making it again", place.env.path)
                continue
            try:
                yield place
            finally:
                lock.release()
            return
        finally:
            await asyncio.to_thread(place.close)


async def _download(
    source: BackupSource,
    backup: Backup,
    dest: Path,
    opts: DownloadOptions,
    progress: ProgressCallback | None,
    ledger: SpaceLedger,
) -> BackupDownload:
    async with _locked_place(dest, backup.environment_id, backup.id, opts.lock_timeout) as place:
        done, repaired = await asyncio.to_thread(
            _complete_or_repair, place.env, backup, opts, progress
        )
        if done is not None:
            return done
        urls = URLSource(
            source,
            backup.id,
            expires_in=opts.expires_in,
            refresh_margin=opts.url_refresh_margin,
        )
        first = await urls.fetch()
        names = artifact_filenames({a: url_of(first, a) for a in ARTIFACTS})
        work = place.env.subfolder(staging_name(backup.id), create=True, private=True)
        assert work is not None  # noqa: S101 - create=True
        with work:
            job = _BackupJob(source, backup, place.env, work, names, urls, opts, progress)
            try:
                return await job.run(ledger, repaired)
            finally:
                place.env.rmdir_if_empty(staging_name(backup.id))  # only if nothing came


# -- step 3: already complete? ---------------------------------------------------------------


def _complete_or_repair(
    env: Folder, backup: Backup, opts: DownloadOptions, progress: ProgressCallback | None
) -> tuple[BackupDownload | None, tuple[str, ...]]:
    """The complete folder's result if it is intact. Else (damaged, or without a record
    to trust) it is moved back to the work folder for repair, and the problems found are
    returned."""
    name = str(backup.id)
    folder = env.subfolder(name, create=False, private=True)
    if folder is None:
        return None, ()
    problems: dict[str, str] = {}
    with folder:
        record = load_record(folder, backup.id)
        if record is not None and record.complete:
            problems = _problems(folder, record, rehash=opts.reverify)
            if not problems:
                _refuse_unverified_if_strict(record, opts)
                return _result_from_record(env, backup, record, opts, progress), ()
            for problem in problems.values():
                logger.warning("%s: %s; repairing it", folder.path, problem)
            _emit(progress, backup, record, "repair", only=problems)
            good = {a: f for a, f in record.files.items() if f is not None and a not in problems}
            FileLog(folder, backup, good).record(complete=False).save(folder)
    staging = staging_name(backup.id)
    older = env.subfolder(staging, create=False, private=True)  # refused unless ours
    if older is not None:
        older.close()
        env.remove_tree(staging)  # older work than the folder that was complete
    env.replace(name, staging)
    return None, tuple(problems.values())


def _problems(folder: Folder, record: CompletionRecord, *, rehash: bool) -> dict[str, str]:
    """What is wrong with a complete folder's files, per artifact."""
    problems = {}
    for artifact, entry in record.files.items():
        if entry is None:
            continue
        info = folder.lstat(entry.name)
        if info is None:
            problems[artifact] = f"{entry.name} is missing"
        elif not folder.is_file(entry.name):
            problems[artifact] = f"{entry.name} is not a regular file"
        elif not entry.still_on_disk(info):
            problems[artifact] = f"{entry.name} changed since it was verified (size or time)"
        elif rehash and _sha256_of(folder, entry) != entry.sha256:
            problems[artifact] = f"{entry.name} no longer matches its recorded SHA-256"
    return problems


def _sha256_of(folder: Folder, entry: RecordedFile) -> str:
    hashes = Hashes(set())
    fd = folder.open_file(entry.name, os.O_RDONLY)
    try:
        hash_range(fd, 0, entry.size, hashes)
    finally:
        os.close(fd)
    return hashes.hexdigest("sha256") or ""


def _refuse_unverified_if_strict(record: CompletionRecord, opts: DownloadOptions) -> None:
    if not opts.strict:
        return
    for artifact, entry in record.files.items():
        if entry is not None and not entry.verified:
            raise IntegrityError(
                f"{entry.name} is on disk from an earlier run, but nothing verified it "
                "(the manifest has no checksum for it) and strict=True",
                artifact=artifact,
            )


def _result_from_record(
    env: Folder,
    backup: Backup,
    record: CompletionRecord,
    opts: DownloadOptions,
    progress: ProgressCallback | None,
) -> BackupDownload:
    directory = env.path / str(backup.id)
    evidence: Evidence = "rehashed" if opts.reverify else "record"

    def file(artifact: str) -> DownloadedFile | None:
        entry = record.files.get(artifact)
        return None if entry is None else _kept_file(directory, artifact, entry, evidence)

    _emit(progress, backup, record, "skipped")
    return BackupDownload(
        backup_id=backup.id,
        environment_id=backup.environment_id,
        directory=directory,
        database=file("database"),
        filestore=file("filestore"),
        manifest=file("manifest"),
        skipped=True,
    )


def _kept_file(
    directory: Path, artifact: str, entry: RecordedFile, evidence: Evidence
) -> DownloadedFile:
    return DownloadedFile(
        artifact=artifact,
        path=directory / entry.name,
        size=entry.size,
        sha256=entry.sha256,
        verified=entry.verified,
        resumed_from=entry.size,
        bytes_transferred=0,
        evidence=evidence,
    )


def _emit(
    progress: ProgressCallback | None,
    backup: Backup,
    record: CompletionRecord,
    kind: Any,
    *,
    only: Collection[str] | None = None,
) -> None:
    """One ``kind`` event per file of the record (or only per artifact in ``only``)."""
    if progress is None:
        return
    for artifact, entry in record.files.items():
        if entry is not None and (only is None or artifact in only):
            progress(
                ProgressEvent(
                    backup_id=backup.id,
                    environment_id=backup.environment_id,
                    artifact=artifact,
                    bytes_done=entry.size,
                    total=entry.size,
                    resumed_from=entry.size,
                    kind=kind,
                )
            )


# -- steps 5 and 6 -----------------------------------------------------------------------------


class _BackupJob:
    """The transfers of one backup in its work folder, and the folder's completion."""

    def __init__(
        self,
        source: BackupSource,
        backup: Backup,
        env: Folder,
        work: Folder,
        names: dict[str, str],
        urls: URLSource,
        opts: DownloadOptions,
        progress: ProgressCallback | None,
    ) -> None:
        self.source = source
        self.backup = backup
        self.env = env
        self.work = work
        self.names = names
        self.urls = urls
        self.opts = opts
        self.progress = progress
        self.directory = env.path / str(backup.id)
        self.manifest = ManifestSlot()
        self.kept: dict[str, RecordedFile] = {}
        earlier = load_record(work, backup.id)
        files = {
            a: f
            for a, f in (earlier.files.items() if earlier is not None else ())
            if f is not None and a in names and f.still_on_disk(work.lstat(f.name))
        }
        self.log = FileLog(work, backup, files)
        self.manifest_rules = ManifestRules(
            folder=work, backup=backup, names=names, log=self.log, kept=self.kept
        )

    def _rules(self, artifact: str, name: str) -> ArtifactRules:
        if artifact == "manifest":
            return self.manifest_rules
        return DataRules(
            artifact=artifact,
            name=name,
            folder=self.work,
            manifest=self.manifest,
            log=self.log,
            kept=self.kept,
            strict=self.opts.strict,
            keep=lambda a, entry: _kept_file(self.directory, a, entry, "record"),
        )

    async def run(self, ledger: SpaceLedger, repaired: tuple[str, ...] = ()) -> BackupDownload:
        if "manifest" not in self.names:
            self.manifest.set(None)
        settings = self.source.storage_settings
        shared = Shared(
            backup_id=self.backup.id,
            environment_id=self.backup.environment_id,
            folder=self.work,
            final_directory=self.directory,
            urls=self.urls,
            session=await self.source.storage_session(),
            settings=settings,
            extra_headers=self.source.storage_headers,
            ledger=ledger,
            retry=RetryPolicy(max_retries=self.opts.retries, base=0.25, cap=8.0),
            buffer_size=self.opts.buffer_size,
            segments=self.opts.segment_policy,
            progress=self.progress,
        )
        transfers = {
            a: ArtifactTransfer(shared, a, name, self._rules(a, name))
            for a, name in self.names.items()
        }
        files = await self._run_all(transfers)
        await asyncio.to_thread(self._complete)
        return BackupDownload(
            backup_id=self.backup.id,
            environment_id=self.backup.environment_id,
            directory=self.directory,
            database=files.get("database"),
            filestore=files.get("filestore"),
            manifest=files.get("manifest"),
            repaired=repaired,
        )

    def _complete(self) -> None:
        """The record says complete (durably), then the folder takes its final name."""
        self.log.record(complete=True, artifacts=ARTIFACTS).save(self.work)
        self.env.replace(staging_name(self.backup.id), str(self.backup.id))
        self.env.fsync()

    async def _run_all(self, transfers: dict[str, ArtifactTransfer]) -> dict[str, DownloadedFile]:
        """Run every transfer at once; the first failure cancels the others."""
        tasks = {a: asyncio.create_task(t.run(), name=f"oec-{a}") for a, t in transfers.items()}
        manifest_task = tasks.get("manifest")
        if manifest_task is not None:
            manifest_task.add_done_callback(self._manifest_done)
        try:
            await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pending = [t for t in tasks.values() if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        # Every error is retrieved (two transfers may fail at once); the first is raised:
        # the manifest's own error explains the others' "manifest unavailable".
        errors = [t.exception() for t in tasks.values() if not t.cancelled()]
        if (error := next((e for e in errors if e is not None), None)) is not None:
            raise error
        return {artifact: task.result() for artifact, task in tasks.items()}

    def _manifest_done(self, task: asyncio.Task[DownloadedFile]) -> None:
        if task.cancelled():
            self.manifest.fail(asyncio.CancelledError())
        elif (exc := task.exception()) is not None:
            self.manifest.fail(exc)
        else:  # at its final name now: data files checked against it may take theirs
            self.manifest.set(self.manifest_rules.parsed)
