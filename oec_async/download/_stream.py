"""One artifact, from a presigned URL to a verified file under its final name.

The steps, in the order they happen:

1. **Look at the disk.** A ``.part`` with a trustworthy sidecar is resumed from its length;
   anything else is discarded. The bytes already there are hashed once, now, so that the
   end of the transfer needs no second read of the file.
2. **Ask for the rest.** ``Range: bytes=<offset>-`` with ``If-Range: <ETag or date>``.
   A 206 must carry the ``Content-Range`` we asked for and the same object identity; a
   200 (Range ignored, or If-Range failed because the object changed) restarts the file
   from zero *with that same response*; a 416 or a wrong ``Content-Range`` discards the
   partial and asks again from zero. Stale bytes are never mixed with new ones.
3. **Stream to disk.** Chunks are gathered into buffers and each buffer is written and
   hashed in a worker thread while the next one is read (two buffers in flight at most,
   so memory is flat whatever the file size). A stall (no byte for ``timeout`` seconds)
   or a dropped connection goes back to step 2 from the current offset, with backoff;
   the attempt counter resets whenever bytes arrive.
4. **Expired URL.** Storage refusing the URL (403/400) makes the URL source renew all of
   the backup's URLs through the API, and the transfer goes on where it was.
5. **Verify and rename.** The size and checksum are compared with the manifest. A mismatch
   throws the bytes away and fetches once more from zero; a second mismatch raises
   :class:`~oec_async.errors.IntegrityError`. Only a file that passed gets its final name
   (after an fsync), so a final name always means a complete file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from oec_async._redact import redact_text, redact_url
from oec_async._retry import RETRYABLE_STATUSES, RetryPolicy, server_retry_after
from oec_async.download._disk import SpaceClaim, SpaceLedger, is_out_of_space
from oec_async.download._layout import FILE_MODE, partial_path, sidecar_path
from oec_async.download._partial import ObjectIdentity, PartialFile
from oec_async.download._urls import URLSource
from oec_async.download.progress import EventKind, ProgressCallback, ProgressEvent
from oec_async.errors import (
    DownloadError,
    InsufficientSpaceError,
    IntegrityError,
    StorageError,
)

if TYPE_CHECKING:
    import uuid

__all__ = ["ArtifactTransfer", "TransferContext", "TransferOutcome", "Verdict"]

logger = logging.getLogger("oec_async.download")

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_EXPIRED_STATUSES = frozenset({400, 401, 403})
_GONE_STATUSES = frozenset({404, 410})
_MAX_URL_REFRESHES = 3
_PREFIX_BLOCK = 4 * 1024 * 1024


class _Restart(Exception):
    """Internal: the partial cannot be continued; discard it and start from zero."""


class _Transient(Exception):
    """Internal: a passing failure; resume from the current offset after a backoff."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class _Expired(Exception):
    """Internal: storage refused the URL; renew it."""


class _Mismatch(Exception):
    """Internal: the object is not what the manifest describes."""


@attrs.define
class TransferContext:
    """What the transfers of one backup share."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    session: aiohttp.ClientSession
    urls: URLSource
    ledger: SpaceLedger
    policy: RetryPolicy
    idle_timeout: float
    connect_timeout: float
    buffer_size: int
    progress: ProgressCallback | None
    ssl: Any = True


@attrs.frozen
class Verdict:
    """The result of checking a complete ``.part`` against what it should be."""

    ok: bool
    verified: bool
    problem: str | None = None


@attrs.frozen
class TransferOutcome:
    path: Path
    size: int
    sha256: str
    verified: bool
    resumed_from: int
    bytes_transferred: int


class _Hashes:
    """Running digests of the bytes written so far, in order."""

    def __init__(self, algorithms: set[str]) -> None:
        self.hashers = {name: hashlib.new(name) for name in {"sha256", *algorithms}}

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for hasher in self.hashers.values():
            hasher.update(data)

    def hexdigest(self, algorithm: str) -> str | None:
        hasher = self.hashers.get(algorithm)
        return hasher.hexdigest() if hasher is not None else None


class _Writer:
    """Sequential writes at an offset, hashed in the same worker-thread hop.

    At most one write is in flight while the caller gathers the next buffer. ``confirmed``
    counts the bytes that are both on disk and in the running hash: after any failure the
    file is cut back to it, so the hash and the file never disagree and a resume needs no
    re-read of what is already there.
    """

    def __init__(self, path: Path, hashes: _Hashes, offset: int, artifact: str) -> None:
        self.artifact = artifact
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        os.fchmod(self.fd, FILE_MODE)
        self.hashes = hashes
        self.confirmed = offset
        self._next = offset
        self._pending: asyncio.Future[None] | None = None

    def _write_sync(self, data: bytearray, offset: int) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self.fd, view[done:], offset + done)
        except OSError as exc:
            if is_out_of_space(exc):
                raise InsufficientSpaceError(
                    "the disk filled up while writing; the partial file is kept for a resume",
                    artifact=self.artifact,
                ) from None
            raise
        self.hashes.update(data)
        self.confirmed = offset + len(data)

    async def write(self, data: bytearray) -> None:
        await self.drain()
        offset, self._next = self._next, self._next + len(data)
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(None, self._write_sync, data, offset)

    async def drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def close(self) -> None:
        """Wait for the write in flight (whatever its fate), cut the file back to what is
        confirmed, and close."""
        try:
            if self._pending is not None:
                await asyncio.wait([self._pending])
                self._pending = None
            if os.fstat(self.fd).st_size != self.confirmed:
                os.ftruncate(self.fd, self.confirmed)
        finally:
            os.close(self.fd)


def _hash_prefix(path: Path, length: int, hashes: _Hashes) -> None:
    with path.open("rb") as handle:
        remaining = length
        while remaining > 0:
            block = handle.read(min(_PREFIX_BLOCK, remaining))
            if not block:
                raise OSError(f"{path.name} is shorter than expected")
            hashes.update(block)
            remaining -= len(block)


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.match((value or "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


class ArtifactTransfer:
    """Fetch one artifact into ``final`` (through ``final.part``) and verify it."""

    def __init__(
        self,
        ctx: TransferContext,
        artifact: str,
        final: Path,
        verify: Callable[[ArtifactTransfer], Awaitable[Verdict]],
        *,
        algorithms: Callable[[], set[str]] = set,
        expected_size: Callable[[], int | None] = lambda: None,
        max_size: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.artifact = artifact
        self.final = final
        self._verify = verify
        self._algorithms = algorithms
        self._expected_size = expected_size
        self._max_size = max_size
        self.partial = PartialFile(partial_path(final), sidecar_path(final))
        self.offset = 0
        self.total: int | None = None
        self.identity: ObjectIdentity | None = None
        self.hashes: _Hashes | None = None
        self.resumed_from = 0
        self.bytes_transferred = 0
        self._claim: SpaceClaim | None = None
        self._url_refreshes = 0

    # -- reporting -----------------------------------------------------------------------

    def _emit(self, kind: EventKind) -> None:
        if self.ctx.progress is None:
            return
        self.ctx.progress(
            ProgressEvent(
                backup_id=self.ctx.backup_id,
                environment_id=self.ctx.environment_id,
                artifact=self.artifact,
                bytes_done=self.offset,
                total=self.total,
                resumed_from=self.resumed_from,
                kind=kind,
            )
        )

    # -- the whole job -------------------------------------------------------------------

    async def run(self) -> TransferOutcome:
        self.offset, self.identity = self.partial.load()
        self.resumed_from = self.offset
        self.total = self.identity.size if self.identity else None
        if self.offset:
            logger.debug("%s: resuming from byte %d", self.artifact, self.offset)
        mismatches = 0
        try:
            while True:
                try:
                    await self._fetch()
                    verdict = await self._verify(self)
                    if verdict.ok:
                        return await self._finalize(verdict)
                    problem = verdict.problem or "does not match the manifest"
                except _Mismatch as exc:
                    problem = str(exc)
                mismatches += 1
                logger.warning("%s: %s; discarding the bytes", self.artifact, problem)
                self._start_over()
                if mismatches > 1:
                    raise IntegrityError(
                        f"{problem} (after a second fetch from zero); nothing was kept",
                        artifact=self.artifact,
                    )
        finally:
            if self._claim is not None:
                self._claim.release()

    def _start_over(self) -> None:
        self.partial.discard()
        self.offset = 0
        self.identity = None
        self.total = None
        self.hashes = None
        self._emit("restart")

    def digest(self, algorithm: str) -> str | None:
        """The streamed digest of the complete ``.part`` for ``algorithm`` (None if that
        algorithm was not being computed)."""
        return self.hashes.hexdigest(algorithm) if self.hashes else None

    async def digest_by_reading(self, algorithm: str) -> str:
        """Digest by a second read of the file: only for a manifest whose algorithm was
        not known when streaming began."""
        hashes = _Hashes({algorithm})
        await asyncio.to_thread(_hash_prefix, self.partial.part, self.offset, hashes)
        digest = hashes.hexdigest(algorithm)
        assert digest is not None  # noqa: S101
        return digest

    async def _finalize(self, verdict: Verdict) -> TransferOutcome:
        sha256 = self.digest("sha256")
        if sha256 is None:
            sha256 = await self.digest_by_reading("sha256")
        fd = os.open(self.partial.part, os.O_RDONLY)
        try:
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
        os.replace(self.partial.part, self.final)
        self.partial.sidecar.unlink(missing_ok=True)
        _fsync_dir(self.final.parent)
        self._emit("done")
        return TransferOutcome(
            path=self.final,
            size=self.offset,
            sha256=sha256,
            verified=verdict.verified,
            resumed_from=self.resumed_from,
            bytes_transferred=self.bytes_transferred,
        )

    # -- fetching until the .part is complete ----------------------------------------

    async def _fetch(self) -> None:
        """Bring ``.part`` to the object's full length, resuming across failures."""
        failures = 0
        while True:
            if self.total is not None and self.offset == self.total:
                await self._ensure_hashes()
                return
            progressed_from = self.offset
            try:
                await self._attempt()
                continue  # loop back: complete now, or the body ended early
            except _Restart as exc:
                logger.info("%s: %s; restarting from zero", self.artifact, exc)
                self._start_over()
                failures += 1
                delay = None
                reason = str(exc)
            except _Expired:
                self._url_refreshes += 1
                if self._url_refreshes > _MAX_URL_REFRESHES:
                    raise StorageError(
                        "storage keeps refusing freshly signed URLs (403/400)",
                        artifact=self.artifact,
                    ) from None
                continue
            except _Transient as exc:
                failures += 1
                delay, reason = exc.delay, str(exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures += 1
                delay = None
                reason = "stalled" if isinstance(exc, TimeoutError) else _describe(exc)
            if self.offset > progressed_from:
                failures = 1  # bytes arrived: this is a fresh run of bad luck
                self._url_refreshes = 0
            if failures > self.ctx.policy.max_retries:
                raise DownloadError(
                    f"gave up after {failures} failed attempts without progress "
                    f"(last: {reason}); {self.offset} bytes kept for a resume",
                    artifact=self.artifact,
                )
            wait = delay if delay is not None else self.ctx.policy.backoff(failures)
            logger.info(
                "%s: %s at byte %d; retry %d in %.2f s",
                self.artifact,
                reason,
                self.offset,
                failures,
                wait,
            )
            self._emit("retry")
            await asyncio.sleep(wait)

    async def _ensure_hashes(self) -> None:
        """Hash the bytes already on disk, once, before appending to them."""
        if self.hashes is None:
            self.hashes = _Hashes(self._algorithms())
            if self.offset:
                await asyncio.to_thread(_hash_prefix, self.partial.part, self.offset, self.hashes)

    async def _attempt(self) -> None:
        """One request: headers checked, then the body streamed to disk."""
        url, generation = await self.ctx.urls.get(self.artifact)
        await self._ensure_hashes()
        headers = {"Accept-Encoding": "identity"}
        resuming = self.offset > 0 and self.identity is not None
        if resuming:
            assert self.identity is not None  # noqa: S101
            headers["Range"] = f"bytes={self.offset}-"
            if self.identity.if_range:
                headers["If-Range"] = self.identity.if_range
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.ctx.connect_timeout, sock_read=self.ctx.idle_timeout
        )
        async with self.ctx.session.get(
            url, headers=headers, timeout=timeout, ssl=self.ctx.ssl
        ) as resp:
            logger.debug(
                "GET %s [%s] -> %d",
                redact_url(str(resp.url)),
                headers.get("Range", "full"),
                resp.status,
            )
            if resp.status in _EXPIRED_STATUSES:
                await self.ctx.urls.refresh(generation)
                raise _Expired
            self._check_status(resp)
            self._accept_headers(resp, resuming)
            await self._stream_body(resp)

    def _check_status(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status in (200, 206):
            return
        if resp.status == 416:
            raise _Restart("storage answered 416 Range Not Satisfiable")
        if resp.status in _GONE_STATUSES:
            raise StorageError(
                f"storage has no such object (HTTP {resp.status})",
                artifact=self.artifact,
                status=resp.status,
            )
        if resp.status in RETRYABLE_STATUSES:
            asked = server_retry_after(resp.headers)
            delay = min(asked, self.ctx.policy.max_wait) if asked is not None else None
            raise _Transient(f"storage answered HTTP {resp.status}", delay)
        raise StorageError(
            f"storage answered HTTP {resp.status}", artifact=self.artifact, status=resp.status
        )

    def _accept_headers(self, resp: aiohttp.ClientResponse, resuming: bool) -> None:
        """Decide from the headers whether the body continues our partial or replaces it."""
        if resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
            # The manifest hashes the stored bytes; a transcoded body would never verify.
            raise StorageError("storage sent a content-encoded body", artifact=self.artifact)
        if resp.status == 206:
            parsed = _parse_content_range(resp.headers.get("Content-Range"))
            if parsed is None:
                raise _Restart("206 without a usable Content-Range")
            start, end, total = parsed
            fresh = ObjectIdentity.from_headers(resp.headers, total)
            expected_start = self.offset if resuming else 0
            if start != expected_start or total is None or end != total - 1:
                raise _Restart(
                    f"Content-Range {start}-{end}/{total} does not continue byte {self.offset}"
                )
            if resuming:
                assert self.identity is not None  # noqa: S101
                if not self.identity.same_object(fresh):
                    raise _Restart("the object changed since the partial was written")
                self._begin(self.identity, total)
                return
            self._begin_fresh(fresh, total)
            return
        # 200: the whole object. If we asked for a range, the server ignored it or the
        # object changed (If-Range failed): either way the partial is worthless now.
        length = resp.content_length
        if resuming:
            logger.info("%s: storage sent the whole object; restarting from zero", self.artifact)
            self._start_over()
        self._begin_fresh(ObjectIdentity.from_headers(resp.headers, length), length)

    def _begin_fresh(self, identity: ObjectIdentity, total: int | None) -> None:
        self.partial.discard()
        self.offset = 0
        self.hashes = _Hashes(self._algorithms())
        self._begin(identity, total)
        if identity.resumable:
            self.partial.save(identity)

    def _begin(self, identity: ObjectIdentity, total: int | None) -> None:
        expected = self._expected_size()
        if expected is not None and total is not None and expected != total:
            raise _Mismatch(f"storage holds {total} bytes, the manifest says {expected}")
        if self._max_size is not None and total is not None and total > self._max_size:
            raise _Mismatch(f"{total} bytes is more than the {self._max_size} accepted")
        self.identity = identity
        self.total = total
        remaining = (total - self.offset) if total is not None else 0
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        self._claim = self.ctx.ledger.claim(self.final.parent, remaining, artifact=self.artifact)
        self._emit("start")

    async def _stream_body(self, resp: aiohttp.ClientResponse) -> None:
        assert self.hashes is not None  # noqa: S101
        writer = _Writer(self.partial.part, self.hashes, self.offset, self.artifact)
        buffer = bytearray()
        size = self.ctx.buffer_size
        limit = self.total if self.total is not None else self._max_size
        written_before = self.offset
        try:
            if self.offset == 0:
                os.ftruncate(writer.fd, 0)
            async for chunk in resp.content.iter_any():
                if limit is not None and writer.confirmed + len(buffer) + len(chunk) > limit:
                    if self.total is None:
                        raise _Mismatch(f"larger than the {limit} bytes accepted for this file")
                    raise _Restart("storage sent more bytes than the object holds")
                buffer += chunk
                self.bytes_transferred += len(chunk)
                if len(buffer) >= size:
                    await self._write(writer, buffer)
                    buffer = bytearray()
            if buffer:
                await self._write(writer, buffer)
            await writer.drain()
            self.offset = writer.confirmed
            self._emit("progress")
        except (aiohttp.ClientError, TimeoutError):
            # The connection failed, but every byte already received is good: keep it, so
            # the resume starts where the bytes stopped, not where the last buffer did.
            if buffer:
                await self._write(writer, buffer)
                await writer.drain()
            raise
        finally:
            await writer.close()
            self.offset = writer.confirmed
            if self._claim is not None:
                self._claim.consumed(self.offset - written_before)
        if self.total is None:
            self.total = self.offset  # no length announced: the end of the body is the end
        elif self.offset < self.total:
            raise _Transient(f"body ended at byte {self.offset} of {self.total}")

    async def _write(self, writer: _Writer, buffer: bytearray) -> None:
        await writer.write(buffer)
        if writer.confirmed != self.offset:
            self.offset = writer.confirmed
            self._emit("progress")


def _size_on_disk(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact_text(str(exc))}" if str(exc) else type(exc).__name__
