"""One artifact, from a presigned URL to a verified file under its final name.

The steps, in the order they happen:

1. **Look at the disk.** A ``.part`` with a trustworthy sidecar is resumed; anything else
   is discarded. A plain partial's bytes are hashed once, now, so that the end of the
   transfer needs no second read of the file. A partial that is already complete is not
   trusted as it is: its last byte is asked for again with ``If-Range``, which makes
   storage confirm the object (206) or send the new one (200).
2. **Ask for the rest.** ``Range: bytes=<offset>-`` with ``If-Range: <ETag or date>``.
   A 206 must carry the ``Content-Range`` we asked for and the same object identity; a
   200 (Range ignored, or If-Range failed because the object changed) restarts the file
   from zero *with that same response*; a 416 or a wrong ``Content-Range`` discards the
   partial and asks again from zero. Stale bytes are never mixed with new ones.
3. **Stream to disk.** The event loop only receives; worker threads write and hash each
   buffer in order (:mod:`._writer`), a few buffers in flight at most, so memory is flat
   whatever the file size. A large file whose storage honours ranges goes over several
   connections instead (:mod:`._segments`). A stall (no byte for ``timeout`` seconds) or
   a dropped connection goes back to step 2 from the current offset, with backoff; the
   attempt counter resets whenever bytes arrive.
4. **Expired URL.** Storage refusing the URL (403/400) makes the URL source renew all of
   the backup's URLs through the API, and the transfer goes on where it was.
5. **Verify and rename.** The size and checksum are compared with the manifest. A mismatch
   throws the bytes away and fetches once more from zero; a second mismatch raises
   :class:`~oec_async.errors.IntegrityError`. Only a file that passed gets its final name
   (after an fsync), so a final name always means a complete, checked file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from oec_async._http import is_certificate_error
from oec_async._redact import redact_text, redact_url
from oec_async._retry import RETRYABLE_STATUSES, RetryPolicy, server_retry_after
from oec_async.download._disk import SpaceClaim, SpaceLedger
from oec_async.download._layout import partial_path, sidecar_path
from oec_async.download._partial import ObjectIdentity, PartialFile
from oec_async.download._segments import Segment, SegmentedFetch
from oec_async.download._signals import Expired, Mismatch, RangesIgnored, Restart, Transient
from oec_async.download._urls import URLSource
from oec_async.download._writer import Chunk, Hashes, StreamWriter, hash_file
from oec_async.download.progress import EventKind, ProgressCallback, ProgressEvent
from oec_async.errors import DownloadError, IntegrityError, StorageError

if TYPE_CHECKING:
    import uuid

__all__ = ["ArtifactTransfer", "SegmentPolicy", "TransferContext", "TransferOutcome", "Verdict"]

logger = logging.getLogger("oec_async.download")

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_EXPIRED_STATUSES = frozenset({400, 401, 403})
_GONE_STATUSES = frozenset({404, 410})
_MAX_URL_REFRESHES = 3


@attrs.frozen
class SegmentPolicy:
    """When one file goes over several connections, and how many."""

    connections: int = 4
    threshold: int = 64 * 1024 * 1024  # files smaller than this use one stream
    min_size: int = 8 * 1024 * 1024  # never split a range below this
    #: Split only while one connection brings less than this (bytes/s): a fast link is
    #: limited by the CPU, which more connections would only load further.
    grow_below: float = 128 * 1024 * 1024
    #: Seconds of one stream measured before deciding (0: split at once, like aria2 -x).
    probe: float = 0.15


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
    segments: SegmentPolicy = attrs.Factory(SegmentPolicy)
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
        self.segments: list[Segment] | None = None
        self.hashes: Hashes | None = None
        self.resumed_from = 0
        self.bytes_transferred = 0
        self._claim: SpaceClaim | None = None
        self._url_refreshes = 0
        self._single_stream_only = False

    # -- reporting -----------------------------------------------------------------------

    def emit(self, kind: EventKind) -> None:
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

    def report_written(self, amount: int) -> None:
        """``amount`` more bytes are on disk (called by the segmented fetch)."""
        if self._claim is not None:
            self._claim.consumed(amount)
        self.emit("progress")

    # -- the whole job -------------------------------------------------------------------

    async def run(self) -> TransferOutcome:
        state = self.partial.load()
        self.offset, self.identity = state.offset, state.identity
        self.total = self.identity.size if self.identity else None
        if state.segments is not None:
            self.segments = [Segment(*s) for s in state.segments]
        if self.identity is not None and 0 < self.offset == self.identity.size:
            # A complete partial left by an earlier run is not trusted as it is: the object
            # may have changed since. Its last byte is asked for again with If-Range, so
            # storage either confirms the object (206) or sends the new one (200).
            self.segments = None
            self.partial.save(self.identity)
            await asyncio.to_thread(os.truncate, self.partial.part, self.offset - 1)
            self.offset -= 1
        self.resumed_from = self.offset
        if self.offset:
            logger.debug("%s: resuming from byte %d", self.artifact, self.offset)
        mismatches = 0
        try:
            while True:
                try:
                    await self._fetch()
                    self.emit("verifying")
                    verdict = await self._verify(self)
                    if verdict.ok:
                        return await self._finalize(verdict)
                    problem = verdict.problem or "does not match the manifest"
                except Mismatch as exc:
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
        self.segments = None
        self.hashes = None
        self.emit("restart")

    def digest(self, algorithm: str) -> str | None:
        """The streamed digest of the complete ``.part`` for ``algorithm`` (None if that
        algorithm was not being computed)."""
        return self.hashes.hexdigest(algorithm) if self.hashes else None

    async def digest_by_reading(self, algorithm: str) -> str:
        """Digest by a second read of the file: only for a manifest whose algorithm was
        not known when streaming began."""
        hashes = Hashes({algorithm})
        await asyncio.to_thread(hash_file, self.partial.part, self.offset, hashes)
        digest = hashes.hexdigest(algorithm)
        assert digest is not None  # noqa: S101
        return digest

    async def _finalize(self, verdict: Verdict) -> TransferOutcome:
        sha256 = self.digest("sha256")
        if sha256 is None:
            sha256 = await self.digest_by_reading("sha256")
        # The thread opens, syncs and closes the file itself: a cancelled caller can
        # never close the descriptor under a running fsync.
        await asyncio.to_thread(_fsync_file, self.partial.part)
        os.replace(self.partial.part, self.final)
        self.partial.sidecar.unlink(missing_ok=True)
        _fsync_dir(self.final.parent)
        self.emit("done")
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
                if self.segments is not None:
                    await self._fetch_segmented(None)
                else:
                    await self._attempt()
                continue  # loop back: complete now, or the body ended early
            except Restart as exc:
                logger.info("%s: %s; restarting from zero", self.artifact, exc)
                self._start_over()
                failures += 1
                delay = None
                reason = str(exc)
            except Expired:
                self._url_refreshes += 1
                if self._url_refreshes > _MAX_URL_REFRESHES:
                    raise StorageError(
                        "storage keeps refusing freshly signed URLs (403/400)",
                        artifact=self.artifact,
                    ) from None
                continue
            except Transient as exc:
                failures += 1
                delay, reason = exc.delay, str(exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if is_certificate_error(exc):
                    raise StorageError(
                        f"storage's TLS certificate is not trusted: {_describe(exc)}",
                        artifact=self.artifact,
                    ) from None
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
            self.emit("retry")
            await asyncio.sleep(wait)

    async def _ensure_hashes(self) -> None:
        """Hash the bytes already on disk, once, before appending to them."""
        if self.hashes is None:
            self.hashes = Hashes(self._algorithms())
            if self.offset:
                await asyncio.to_thread(hash_file, self.partial.part, self.offset, self.hashes)

    def stream_timeout(self) -> aiohttp.ClientTimeout:
        # No total limit, ever: a multi-GB dump may take hours. A silent socket is a stall.
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.ctx.connect_timeout, sock_read=self.ctx.idle_timeout
        )

    def _may_segment(self) -> bool:
        return self.ctx.segments.connections > 1 and not self._single_stream_only

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
        async with self.ctx.session.get(
            url, headers=headers, timeout=self.stream_timeout(), ssl=self.ctx.ssl
        ) as resp:
            logger.debug(
                "GET %s [%s] -> %d",
                redact_url(str(resp.url)),
                headers.get("Range", "full"),
                resp.status,
            )
            if resp.status in _EXPIRED_STATUSES:
                await self.ctx.urls.refresh(generation)
                raise Expired
            self.check_status(resp)
            self._accept_headers(resp, resuming)
            if self._segmentable(resp, resuming):
                assert self.total is not None  # noqa: S101
                self.segments = [Segment(0, self.total, 0)]  # split later, if it pays
                await self._fetch_segmented(resp)
            else:
                await self._stream_body(resp)

    def _segmentable(self, resp: aiohttp.ClientResponse, resuming: bool) -> bool:
        """A fresh, large object from storage that says it serves ranges: this response
        feeds the first range, ranged requests fetch the others (a 200 to one of them
        falls back to a single stream)."""
        return (
            not resuming
            and resp.status == 200
            and resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            and self._may_segment()
            and self.total is not None
            and self.total >= self.ctx.segments.threshold
            and self.identity is not None
            and self.identity.resumable
        )

    async def _fetch_segmented(self, first: aiohttp.ClientResponse | None) -> None:
        assert self.segments is not None  # noqa: S101
        # The in-order hash of a segmented file starts from byte 0 and follows the ranges.
        self.hashes = Hashes(self._algorithms())
        fetch = SegmentedFetch(self, self.segments)
        try:
            await fetch.run(first)
        except RangesIgnored:
            self._single_stream_only = True
            raise Restart("storage ignored Range on a segment; continuing as one stream") from None
        finally:
            self.offset = fetch.done_bytes()
            if not fetch.complete:
                self.hashes = None  # the next attempt rebuilds it from byte 0

    def check_status(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status in (200, 206):
            return
        if resp.status == 416:
            raise Restart("storage answered 416 Range Not Satisfiable")
        if resp.status in _GONE_STATUSES:
            raise StorageError(
                f"storage has no such object (HTTP {resp.status})",
                artifact=self.artifact,
                status=resp.status,
            )
        if resp.status in RETRYABLE_STATUSES:
            asked = server_retry_after(resp.headers)
            delay = min(asked, self.ctx.policy.max_wait) if asked is not None else None
            raise Transient(f"storage answered HTTP {resp.status}", delay)
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
                raise Restart("206 without a usable Content-Range")
            start, end, total = parsed
            fresh = ObjectIdentity.from_headers(resp.headers, total)
            expected_start = self.offset if resuming else 0
            if start != expected_start or total is None or end != total - 1:
                raise Restart(
                    f"Content-Range {start}-{end}/{total} does not continue byte {self.offset}"
                )
            if resuming:
                assert self.identity is not None  # noqa: S101
                if not self.identity.same_object(fresh):
                    raise Restart("the object changed since the partial was written")
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
        self.hashes = Hashes(self._algorithms())
        self._begin(identity, total)
        if identity.resumable:
            self.partial.save(identity)

    def _begin(self, identity: ObjectIdentity, total: int | None) -> None:
        expected = self._expected_size()
        if expected is not None and total is not None and expected != total:
            raise Mismatch(f"storage holds {total} bytes, the manifest says {expected}")
        if self._max_size is not None and total is not None and total > self._max_size:
            raise Mismatch(f"{total} bytes is more than the {self._max_size} accepted")
        self.identity = identity
        self.total = total
        remaining = (total - self.offset) if total is not None else 0
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        self._claim = self.ctx.ledger.claim(self.final.parent, remaining, artifact=self.artifact)
        self.emit("start")

    async def _stream_body(self, resp: aiohttp.ClientResponse) -> None:
        assert self.hashes is not None  # noqa: S101
        writer = StreamWriter(
            self.partial.part,
            self.hashes,
            self.offset,
            self.artifact,
            on_confirmed=self._confirmed,
        )
        chunks: list[Chunk] = []
        gathered = 0
        size = self.ctx.buffer_size
        limit = self.total if self.total is not None else self._max_size
        written_before = received = self.offset
        try:
            if self.offset == 0:
                writer.truncate()
            async for chunk in resp.content.iter_any():
                self.bytes_transferred += len(chunk)
                received += len(chunk)
                if limit is not None and received > limit:
                    if self.total is None:
                        raise Mismatch(f"larger than the {limit} bytes accepted for this file")
                    raise Restart("storage sent more bytes than the object holds")
                chunks.append(chunk)
                gathered += len(chunk)
                if gathered >= size:
                    await writer.write(chunks)
                    chunks, gathered = [], 0
            if chunks:
                await writer.write(chunks)
                chunks, gathered = [], 0
            await writer.drain()
        except (aiohttp.ClientError, TimeoutError, asyncio.CancelledError):
            # The connection failed (or we are cancelled), but every byte already received
            # is good: keep it, so a resume starts where the bytes stopped.
            if chunks:
                await asyncio.shield(writer.write(chunks))
            raise
        finally:
            await writer.close()
            self.offset = writer.confirmed
            if not writer.hashes_valid:
                self.hashes = None  # rebuilt from the disk by the next attempt
            if self._claim is not None:
                self._claim.consumed(self.offset - written_before)
            self.emit("progress")
        if self.total is None:
            self.total = self.offset  # no length announced: the end of the body is the end
        elif self.offset < self.total:
            raise Transient(f"body ended at byte {self.offset} of {self.total}")

    def _confirmed(self, offset: int) -> None:
        """The writer has ``offset`` bytes on disk and hashed."""
        if offset != self.offset:
            self.offset = offset
            self.emit("progress")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
