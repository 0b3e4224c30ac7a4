"""Downloading one backup: its manifest, dump and filestore, concurrently and verified.

The steps of :func:`download_backup`:

1. Resolve the backup (one API call when only an id is given: the folder is named after
   its environment) and create ``dest/<environment_id>/<backup_id>/`` (``0700``).
2. Lock the folder, so two processes never write the same partial files.
3. If a completion record says the folder already holds this backup, verified, return at
   once: no URL requested, no byte transferred.
4. Ask the API for presigned URLs, then run one :class:`ArtifactTransfer` per URL, all at
   once. The manifest is tiny and lands first; the dump and filestore hash while they
   stream and are checked against it when they are complete.
5. Write the completion record, then return a :class:`BackupDownload`.

Any failure cancels the sibling transfers and leaves their partials on disk for a resume.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from oec_async._config import check_expires_in, coerce_uuid
from oec_async._retry import RetryPolicy
from oec_async.download._disk import SpaceLedger, is_out_of_space
from oec_async.download._layout import (
    ARTIFACTS,
    DEFAULT_NAMES,
    LOCK_NAME,
    artifact_filenames,
    backup_directory,
    make_private_dirs,
)
from oec_async.download._lock import DirectoryLock
from oec_async.download._record import CompletionRecord, RecordedFile
from oec_async.download._stream import (
    ArtifactTransfer,
    SegmentPolicy,
    TransferContext,
    TransferOutcome,
    Verdict,
)
from oec_async.download._urls import URLSource, url_of
from oec_async.download.manifest import MAX_MANIFEST_BYTES, Manifest, ManifestEntry, parse_manifest
from oec_async.download.progress import ProgressCallback, ProgressEvent
from oec_async.errors import (
    ConfigurationError,
    DownloadError,
    InsufficientSpaceError,
    IntegrityError,
    ManifestError,
)
from oec_async.models import Backup

if TYPE_CHECKING:
    from oec_async._client import OECClient

__all__ = ["BackupDownload", "DownloadOptions", "DownloadedFile", "download_backup"]

logger = logging.getLogger("oec_async.download")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name} must be positive, got {value!r}")


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class DownloadOptions:
    """How a backup is downloaded. Every field has a default that suits a cron job.

    - ``expires_in``: lifetime asked for the presigned URLs (300..86400 s); they are
      renewed anyway when they run out.
    - ``strict``: an artifact the manifest gives no checksum for (or no manifest at all)
      is an :class:`~oec_async.errors.IntegrityError` instead of ``verified=False``.
    - ``reverify``: re-hash files of an already complete download instead of trusting
      the completion record.
    - ``min_free_space``: bytes to keep free on the destination's disk.
    - ``lock_timeout``: seconds to wait for another process downloading into the same
      folder (0: fail at once with :class:`~oec_async.errors.DownloadLockedError`).
    - ``retries``: consecutive failed attempts (no byte received) before a transfer gives
      up; any byte received resets the count.
    - ``buffer_size``: bytes gathered before each write (and hash) in a worker thread.
    - ``url_refresh_margin``: renew URLs this many seconds before they expire.
    - ``segments``: connections for one large file (1: never split). A file of at least
      ``segment_threshold`` bytes from storage that advertises ranges starts as one
      stream; when, after ``segment_probe`` seconds, one connection brings less than
      ``segment_below`` bytes/s, the rest is split over ``segments`` connections (ranges
      never below ``min_segment_size``). ``segment_probe=0`` splits at once.
    """

    expires_in: int = attrs.field(default=3600)
    strict: bool = False
    reverify: bool = False
    min_free_space: int = attrs.field(default=0, validator=_not_negative)
    lock_timeout: float = attrs.field(default=0.0, validator=_not_negative)
    retries: int = attrs.field(default=5, validator=_not_negative)
    buffer_size: int = attrs.field(default=1024 * 1024, validator=_positive)
    url_refresh_margin: float = attrs.field(default=60.0, validator=_not_negative)
    segments: int = attrs.field(default=4, validator=_positive)
    segment_threshold: int = attrs.field(default=64 * 1024 * 1024, validator=_not_negative)
    min_segment_size: int = attrs.field(default=8 * 1024 * 1024, validator=_positive)
    segment_below: float = attrs.field(default=128 * 1024 * 1024, validator=_not_negative)
    segment_probe: float = attrs.field(default=0.15, validator=_not_negative)

    @expires_in.validator
    def _check_expires_in(self, _: attrs.Attribute[int], value: int) -> None:
        check_expires_in(value)

    def with_overrides(self, overrides: dict[str, Any]) -> DownloadOptions:
        if not overrides:
            return self
        known = {a.name for a in attrs.fields(DownloadOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(f"unknown download option(s): {', '.join(unknown)}")
        return attrs.evolve(self, **overrides)


@attrs.frozen
class DownloadedFile:
    """One artifact on disk, at its final name."""

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


@attrs.frozen
class BackupDownload:
    backup_id: uuid.UUID
    environment_id: uuid.UUID
    directory: Path
    database: DownloadedFile | None
    filestore: DownloadedFile | None
    manifest: DownloadedFile | None
    #: True when the folder already held this backup, complete: nothing was fetched.
    skipped: bool = False

    @property
    def files(self) -> list[DownloadedFile]:
        return [f for f in (self.manifest, self.database, self.filestore) if f is not None]

    @property
    def verified(self) -> bool:
        """A manifest was present and every file matched it."""
        return self.manifest is not None and all(f.verified for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def bytes_transferred(self) -> int:
        return sum(f.bytes_transferred for f in self.files)


class _ManifestSlot:
    """The parsed manifest, awaited by the other transfers when they need to verify."""

    def __init__(self) -> None:
        self._future: asyncio.Future[Manifest | None] = asyncio.get_running_loop().create_future()

    def set(self, manifest: Manifest | None) -> None:
        if not self._future.done():
            self._future.set_result(manifest)

    def fail(self, exc: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(
                ManifestError(f"the manifest could not be fetched: {exc}", artifact="manifest")
            )
            self._future.exception()  # retrieved here: the manifest task reports it

    def known(self) -> Manifest | None:
        if self._future.done() and self._future.exception() is None:
            return self._future.result()
        return None

    async def get(self) -> Manifest | None:
        return await self._future


def _entry(manifest: Manifest | None, artifact: str, filename: str) -> ManifestEntry | None:
    if manifest is None:
        return None
    return manifest.entry_for(artifact, filename, DEFAULT_NAMES[artifact])


class _BackupJob:
    """The state of one :func:`download_backup` call."""

    def __init__(
        self,
        client: OECClient,
        backup: Backup,
        directory: Path,
        options: DownloadOptions,
        progress: ProgressCallback | None,
        ledger: SpaceLedger,
    ) -> None:
        self.client = client
        self.backup = backup
        self.directory = directory
        self.options = options
        self.progress = progress
        self.ledger = ledger
        self.manifest = _ManifestSlot()
        self.names: dict[str, str] = {}
        self._parsed: Manifest | None = None

    def _emit_skipped(self, record: CompletionRecord) -> None:
        if self.progress is None:
            return
        for artifact, entry in record.files.items():
            if entry is not None:
                self.progress(
                    ProgressEvent(
                        backup_id=self.backup.id,
                        environment_id=self.backup.environment_id,
                        artifact=artifact,
                        bytes_done=entry.size,
                        total=entry.size,
                        resumed_from=entry.size,
                        kind="skipped",
                    )
                )

    def result_from_record(self, record: CompletionRecord) -> BackupDownload:
        def file(artifact: str) -> DownloadedFile | None:
            entry = record.files.get(artifact)
            if entry is None:
                return None
            return DownloadedFile(
                artifact=artifact,
                path=self.directory / entry.name,
                size=entry.size,
                sha256=entry.sha256,
                verified=entry.verified,
                resumed_from=entry.size,
                bytes_transferred=0,
            )

        self._emit_skipped(record)
        return BackupDownload(
            backup_id=self.backup.id,
            environment_id=self.backup.environment_id,
            directory=self.directory,
            database=file("database"),
            filestore=file("filestore"),
            manifest=file("manifest"),
            skipped=True,
        )

    # -- verification rules ------------------------------------------------------------

    async def verify_manifest(self, transfer: ArtifactTransfer) -> Verdict:
        data = await asyncio.to_thread(transfer.partial.part.read_bytes)
        try:
            manifest = parse_manifest(data)
            for field, expected in (
                ("backup_id", self.backup.id),
                ("environment_id", self.backup.environment_id),
            ):
                found = getattr(manifest, field)
                if found is not None and found != expected:
                    raise ManifestError(
                        f"the manifest is for another backup ({field} {found})",
                        artifact="manifest",
                    )
        except ManifestError:
            transfer.partial.discard()  # a refused manifest is not kept, even as a partial
            raise
        await asyncio.to_thread(self._drop_stale_finals, transfer.final, manifest)
        self._parsed = manifest  # handed to the other transfers once it has its final name
        return Verdict(ok=True, verified=True)

    def _drop_stale_finals(self, manifest_path: Path, manifest: Manifest) -> None:
        """Keep "every file under a final name matches the manifest beside it" true when a
        new manifest replaces an old one (the backup was re-uploaded since an earlier,
        unfinished run): a final file whose entry changed is removed before the new
        manifest takes the final name; this run fetches it again."""
        try:
            previous: Manifest | None = parse_manifest(manifest_path.read_bytes())
        except (OSError, ManifestError):
            previous = None
        for artifact, filename in self.names.items():
            if artifact == "manifest":
                continue
            final = self.directory / filename
            if not final.exists():
                continue
            old = _entry(previous, artifact, filename)
            new = _entry(manifest, artifact, filename)
            if previous is None or old != new:
                logger.warning("%s: no longer what the manifest describes; removing it", final)
                final.unlink(missing_ok=True)

    async def verify_data(self, transfer: ArtifactTransfer) -> Verdict:
        manifest = await self.manifest.get()
        entry = _entry(manifest, transfer.artifact, transfer.final.name)
        size = transfer.offset
        if entry is not None and entry.size is not None and entry.size != size:
            return Verdict(
                ok=False,
                verified=False,
                problem=f"size {size} differs from manifest's {entry.size}",
            )
        if entry is not None and entry.algorithm is not None and entry.digest is not None:
            digest = transfer.digest(entry.algorithm)
            if digest is None:
                digest = await transfer.digest_by_reading(entry.algorithm)
            if digest != entry.digest:
                return Verdict(
                    ok=False,
                    verified=False,
                    problem=f"{entry.algorithm} {digest} differs from manifest's {entry.digest}",
                )
            return Verdict(ok=True, verified=True)
        if self.options.strict:
            why = "there is no manifest" if manifest is None else "the manifest has no checksum"
            raise IntegrityError(
                f"{why} for this file and strict=True; the complete file is kept as .part",
                artifact=transfer.artifact,
            )
        return Verdict(ok=True, verified=False)

    # -- running the transfers ---------------------------------------------------------

    def make_transfer(self, ctx: TransferContext, artifact: str, filename: str) -> ArtifactTransfer:
        final = self.directory / filename
        if artifact == "manifest":
            return ArtifactTransfer(
                ctx, artifact, final, self.verify_manifest, max_size=MAX_MANIFEST_BYTES
            )

        def algorithms() -> set[str]:
            entry = _entry(self.manifest.known(), artifact, filename)
            return {entry.algorithm} if entry is not None and entry.algorithm else set()

        def expected_size() -> int | None:
            entry = _entry(self.manifest.known(), artifact, filename)
            return entry.size if entry is not None else None

        return ArtifactTransfer(
            ctx,
            artifact,
            final,
            self.verify_data,
            algorithms=algorithms,
            expected_size=expected_size,
        )

    async def run(self) -> BackupDownload:
        options = self.options
        urls = URLSource(
            self.client,
            self.backup.id,
            expires_in=options.expires_in,
            refresh_margin=options.url_refresh_margin,
        )
        first = await urls.fetch()
        names = self.names = artifact_filenames({a: url_of(first, a) for a in ARTIFACTS})
        if "manifest" not in names:
            self.manifest.set(None)
        ctx = TransferContext(
            backup_id=self.backup.id,
            environment_id=self.backup.environment_id,
            session=await self.client.storage_session(),
            urls=urls,
            ledger=self.ledger,
            policy=RetryPolicy(max_retries=options.retries, base=0.25, cap=8.0),
            idle_timeout=self.client.timeout,
            connect_timeout=self.client.connect_timeout,
            buffer_size=options.buffer_size,
            progress=self.progress,
            segments=SegmentPolicy(
                connections=options.segments,
                threshold=options.segment_threshold,
                min_size=options.min_segment_size,
                grow_below=options.segment_below,
                probe=options.segment_probe,
            ),
            ssl=self.client.ssl,
        )
        transfers = {a: self.make_transfer(ctx, a, name) for a, name in names.items()}
        outcomes = await self._run_all(transfers)

        files = {
            artifact: DownloadedFile(artifact=artifact, **attrs.asdict(outcome, recurse=False))
            for artifact, outcome in outcomes.items()
        }
        record = CompletionRecord(
            self.backup.id,
            self.backup.environment_id,
            created_at=self.backup.created_at
            or (self._parsed.created_at if self._parsed is not None else None),
            files={
                artifact: RecordedFile(
                    name=f.path.name,
                    size=f.size,
                    sha256=f.sha256,
                    verified=f.verified,
                    mtime_ns=f.path.stat().st_mtime_ns,
                )
                if (f := files.get(artifact)) is not None
                else None
                for artifact in ARTIFACTS
            },
        )
        await asyncio.to_thread(record.save, self.directory)
        return BackupDownload(
            backup_id=self.backup.id,
            environment_id=self.backup.environment_id,
            directory=self.directory,
            database=files.get("database"),
            filestore=files.get("filestore"),
            manifest=files.get("manifest"),
        )

    async def _run_all(self, transfers: dict[str, ArtifactTransfer]) -> dict[str, TransferOutcome]:
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
        failures = [
            t.exception() for t in tasks.values() if not t.cancelled() and t.exception() is not None
        ]
        if failures:
            # The manifest's own error explains the others' "manifest unavailable".
            first = failures[0]
            assert first is not None  # noqa: S101
            raise first
        return {artifact: task.result() for artifact, task in tasks.items()}

    def _manifest_done(self, task: asyncio.Task[TransferOutcome]) -> None:
        if task.cancelled():
            self.manifest.fail(asyncio.CancelledError())
        elif (exc := task.exception()) is not None:
            self.manifest.fail(exc)
        else:  # at its final name now: data files checked against it may take theirs
            self.manifest.set(self._parsed)


async def download_backup(
    client: OECClient,
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
    if isinstance(backup_or_id, Backup):
        backup = backup_or_id
    else:
        backup = await client.get_backup(coerce_uuid(backup_or_id, "backup_or_id"))
    directory = backup_directory(Path(dest), backup.environment_id, backup.id)
    try:
        return await _download_into(client, backup, directory, opts, progress, ledger)
    except OSError as exc:
        if isinstance(exc, aiohttp.ClientError):  # a network error is not about the disk
            raise
        # A read-only disk, a permission, a path that is a file: say which, plainly.
        if is_out_of_space(exc):
            raise InsufficientSpaceError(
                f"no space left in {directory}; partial files are kept for a resume"
            ) from exc
        where = exc.filename or directory
        raise DownloadError(f"cannot write in {where}: {exc.strerror or exc}") from exc


async def _download_into(
    client: OECClient,
    backup: Backup,
    directory: Path,
    opts: DownloadOptions,
    progress: ProgressCallback | None,
    ledger: SpaceLedger | None,
) -> BackupDownload:
    await asyncio.to_thread(make_private_dirs, directory)
    async with DirectoryLock(directory / LOCK_NAME, timeout=opts.lock_timeout):
        record = CompletionRecord.load(directory, backup.id)
        job = _BackupJob(
            client,
            backup,
            directory,
            opts,
            progress,
            ledger or SpaceLedger(opts.min_free_space),
        )
        if record is not None:
            if await asyncio.to_thread(record.intact, directory, rehash=opts.reverify):
                logger.debug("%s: already complete in %s", backup.id, directory)
                return job.result_from_record(record)
            CompletionRecord.forget(directory)
        return await job.run()
