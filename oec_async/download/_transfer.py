"""One artifact, from a presigned URL to a verified file under its final name.

:meth:`ArtifactTransfer.run` is the five steps, in the order they happen:

1. **Look at the disk** (:meth:`~ArtifactTransfer.look_at_disk`). A file an earlier run
   verified, still at its final name and still what the manifest describes, is kept as
   it is. A ``.part`` with a trustworthy sidecar is continued; anything else is
   discarded. A partial that is already complete is checked by its checksum if the
   manifest has one (no request at all); else its last byte is asked for again with
   ``If-Range``, which makes storage confirm the object (206) or send the new one (200).
2. **Ask for the rest** (:mod:`._request`). ``Range: bytes=<offset>-`` with ``If-Range``;
   the answer is judged by a pure function (:mod:`._judge`). Without a validator (no ETag,
   no Last-Modified) a file is continued only when a checksum will verify it whole;
   otherwise it starts from zero. Stale bytes are never mixed with new ones.
3. **Receive** (:mod:`._receive`, :mod:`._segments`). The event loop receives (a large
   body straight into preallocated buffers, :mod:`._takeover`); worker threads write and
   hash each buffer in order. A large file from storage that honours ranges goes over
   several connections when one is slow. Drops, stalls, expired URLs and 5xx go back to
   step 2 through one retry engine (:mod:`._attempts`).
4. **Verify** (:mod:`._verify`). Size and checksum against the manifest. A mismatch of
   bytes fetched by this call throws them away and fetches once more from zero; a second
   mismatch raises :class:`~oec_async.errors.IntegrityError`.
5. **Rename.** fsync, then the final name, then the progress record: a final name always
   means a complete, checked file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import aiohttp
import attrs

from oec_async._retry import RetryPolicy
from oec_async.download._attempts import Attempts
from oec_async.download._disk import SpaceClaim, SpaceLedger
from oec_async.download._folder import Folder
from oec_async.download._judge import Ask, Body
from oec_async.download._partial import ObjectIdentity, PartialFile, PartialState, SegmentState
from oec_async.download._receive import Meter, short_body, stream_body
from oec_async.download._request import Requester
from oec_async.download._segments import SegmentedFetch
from oec_async.download._signals import Mismatch, RangesIgnored, Restart
from oec_async.download._source import StorageSettings
from oec_async.download._urls import URLSource
from oec_async.download._verify import Check
from oec_async.download._writer import Hashes, StreamWriter, hash_range
from oec_async.download.options import SegmentPolicy
from oec_async.download.progress import EventKind, ProgressCallback, ProgressEvent
from oec_async.download.results import DownloadedFile, Evidence
from oec_async.errors import IntegrityError

__all__ = ["ArtifactRules", "ArtifactTransfer", "Received", "Shared"]

logger = logging.getLogger("oec_async.download")


@attrs.frozen
class Shared:
    """What the transfers of one backup share."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    folder: Folder  # the work folder, <backup_id>.part
    final_directory: Path  # where the files are once the folder has its final name
    urls: URLSource
    session: aiohttp.ClientSession
    settings: StorageSettings
    extra_headers: Callable[[str], Mapping[str, str]]
    ledger: SpaceLedger
    retry: RetryPolicy
    buffer_size: int
    segments: SegmentPolicy
    progress: ProgressCallback | None


@attrs.frozen
class Received:
    """Step 3's result: the ``.part`` holds the whole object."""

    size: int
    hashes: Hashes
    #: Bytes of it received by this call (0: all of it was on disk already).
    fetched: int


class ArtifactRules(Protocol):
    """What differs between the manifest and the data files: limits, and steps 1 and 4."""

    max_size: int | None

    def algorithms(self) -> set[str]:
        """Digests to compute while streaming, beside SHA-256."""
        ...

    def expected_size(self) -> int | None:
        """The size the object must have, if known yet."""
        ...

    async def algorithms_to_verify(self) -> set[str]:
        """The digests step 4 will ask for, beside SHA-256 (waits for the manifest)."""
        ...

    async def kept_from_earlier(self) -> DownloadedFile | None:
        """Step 1: the final file of an earlier run, if it may be kept as it is."""
        ...

    async def checksum_will_verify(self) -> bool:
        """A checksum will verify the whole file (so a file may be continued without a
        validator, and a complete partial needs no request)."""
        ...

    async def verify(self, received: Received, digest: Callable[[str], str]) -> Check:
        """Step 4: raises :class:`Mismatch` when the file is not what it should be."""
        ...

    async def done(self, file: DownloadedFile, check: Check, mtime_ns: int) -> None:
        """After step 5: the file is at its final name."""
        ...


class ArtifactTransfer:
    """Fetch one artifact into its final name (through ``<name>.part``) and verify it."""

    def __init__(self, shared: Shared, artifact: str, final: str, rules: ArtifactRules) -> None:
        self.shared = shared
        self.artifact = artifact
        self.final = final
        self.rules = rules
        self.partial = PartialFile(shared.folder, final)
        self.requester = Requester(
            artifact, shared.urls, shared.session, shared.settings, shared.extra_headers
        )
        self.meter = Meter(self._stored)
        # Where the file stands while steps 2 and 3 run (this class is the only writer).
        self._offset = 0
        self._identity: ObjectIdentity | None = None
        self._segments: SegmentState | None = None
        self._hashes: Hashes | None = None
        self._claim: SpaceClaim | None = None
        self._resumed_from = 0
        self._requests = 0  # requests sent (a mismatch counts only if one was)
        self._single_stream_only = False

    @property
    def _total(self) -> int | None:
        return self._identity.size if self._identity is not None else None

    # -- reporting -----------------------------------------------------------------------

    def emit(self, kind: EventKind) -> None:
        if self.shared.progress is None:
            return
        self.shared.progress(
            ProgressEvent(
                backup_id=self.shared.backup_id,
                environment_id=self.shared.environment_id,
                artifact=self.artifact,
                bytes_done=self._offset,
                total=self._total,
                resumed_from=self._resumed_from,
                kind=kind,
            )
        )

    def _stored(self, offset: int) -> None:
        if self._claim is not None and offset > self._offset:
            self._claim.consumed(offset - self._offset)
        if offset != self._offset:
            self._offset = offset
            self.emit("progress")

    # -- the five steps ------------------------------------------------------------------

    async def run(self) -> DownloadedFile:
        """The five steps; returns the file at its final name."""
        try:
            kept = await self.look_at_disk()
            if kept is not None:
                return kept
            mismatches = 0
            while True:
                requests_before = self._requests
                try:
                    received = await self.receive_rest()
                    check = await self.verify(received)
                except Mismatch as exc:
                    # Bytes that were only on disk (a file kept from an earlier run) do
                    # not count: only a fetch is allowed one more try.
                    mismatches += self._requests > requests_before
                    self._mismatch(str(exc), mismatches)
                    continue
                return await self.rename(received, check)
        finally:
            if self._claim is not None:
                self._claim.release()

    def _mismatch(self, problem: str, mismatches: int) -> None:
        logger.warning("%s: %s; discarding the bytes", self.artifact, problem)
        self._start_over()
        if mismatches > 1:
            raise IntegrityError(
                f"{problem} (after a second fetch from zero); nothing was kept",
                artifact=self.artifact,
            )

    # Step 1 ------------------------------------------------------------------------------

    async def look_at_disk(self) -> DownloadedFile | None:
        """Keep a final file of an earlier run, or load the partial to continue from."""
        if self.shared.folder.lstat(self.final) is not None:
            kept = await self.rules.kept_from_earlier()
            if kept is not None:
                self.emit_kept(kept)
                return kept
        state = await asyncio.to_thread(self.partial.load)
        self._offset, self._identity = state.offset, state.identity
        self._segments = state.segments
        unvouched = state.identity is not None and not state.identity.if_range
        if unvouched and not await self.rules.checksum_will_verify():
            self._start_over(quiet=True)  # neither a validator nor a checksum vouches for it
        if self._identity is not None and self._offset == self._total:
            await self._complete_partial(state)
        self._resumed_from = self._offset
        if self._offset:
            logger.debug("%s: resuming from byte %d", self.artifact, self._offset)
        return None

    def emit_kept(self, kept: DownloadedFile) -> None:
        self._offset = self._resumed_from = kept.size
        self._identity = ObjectIdentity(None, None, kept.size)
        self.emit("skipped")

    async def _complete_partial(self, state: PartialState) -> None:
        """A partial that holds the whole object: a checksum verifies it as it is; else
        its last byte is asked for again with If-Range, so storage confirms the object
        (206) or sends the new one (200)."""
        self._segments = None
        if await self.rules.checksum_will_verify():
            return
        identity = state.identity
        if identity is None or not identity.if_range:
            self._start_over(quiet=True)
            return
        await asyncio.to_thread(self.partial.save, identity)
        await asyncio.to_thread(self.partial.truncate, self._offset - 1)
        self._offset -= 1

    # Steps 2 and 3 ------------------------------------------------------------------------

    async def receive_rest(self) -> Received:
        """Bring the ``.part`` to the object's full length, resuming across failures."""
        attempts = Attempts(self.shared.retry, self.artifact, on_retry=self._retrying)
        fetched_before = self.meter.received
        while self._total is None or self._offset < self._total:
            if self._segments is not None:
                await attempts.attempt(
                    lambda: self._fetch_segmented(None), self._position, restart=self._start_over
                )
            else:
                await attempts.attempt(self._stream_once, self._position, restart=self._start_over)
        hashes = await self._hashes_of_whole()
        return Received(self._offset, hashes, self.meter.received - fetched_before)

    def _position(self) -> int:
        return self._offset

    def _retrying(self, _: str) -> None:
        self.emit("retry")

    async def _hashes_of_whole(self) -> Hashes:
        """The running hashes, or (after a restart of the hash) the file hashed once."""
        if self._hashes is None:
            self._hashes = Hashes(self.rules.algorithms())
            if self._offset:
                await asyncio.to_thread(self._hash_prefix, self._hashes)
        return self._hashes

    def _hash_prefix(self, hashes: Hashes) -> None:
        fd = self.partial.open()
        try:
            hash_range(fd, 0, self._offset, hashes)
        finally:
            os.close(fd)

    async def _ask(self) -> Ask:
        """What to ask for next: the rest of what we hold, or (with nothing that could
        vouch for our bytes) the whole object."""
        identity = self._identity
        if self._offset == 0 or identity is None:
            return Ask()
        if not identity.if_range and not await self.rules.checksum_will_verify():
            self._start_over()
            return Ask()
        return Ask(start=self._offset, identity=identity)

    async def _stream_once(self) -> None:
        """One request: headers judged, then the body streamed to disk (or, for a large
        fresh file, handed to the segmented fetch)."""
        ask = await self._ask()
        self._requests += 1
        if ask.ranged:
            await self._hashes_of_whole()  # the prefix is hashed once, before appending
        async with self.requester.open(ask) as (resp, body):
            self._accept(body, resuming=ask.ranged)
            if self._segmentable(resp, body):
                assert self._total is not None  # noqa: S101 - _segmentable checked it
                self._segments = [(0, self._total, 0)]  # split later, if it pays
                await self._fetch_segmented(resp)
            else:
                await self._stream_body(resp)

    def _accept(self, body: Body, *, resuming: bool) -> None:
        """The body continues our partial, or replaces it from byte 0."""
        if body.whole:
            if resuming:
                logger.info("%s: storage sent the whole object; restarting", self.artifact)
                self._start_over()
            self.partial.discard()
            self._offset, self._hashes = 0, Hashes(self.rules.algorithms())
        self._begin(body.identity, body.total)
        if body.whole and body.total is not None:
            self.partial.save(body.identity)

    def _begin(self, identity: ObjectIdentity, total: int | None) -> None:
        expected = self.rules.expected_size()
        if expected is not None and total is not None and expected != total:
            raise Mismatch(f"storage holds {total} bytes, the manifest says {expected}")
        limit = self.rules.max_size
        if limit is not None and total is not None and total > limit:
            raise Mismatch(f"{total} bytes is more than the {limit} accepted")
        self._identity = ObjectIdentity(identity.etag, identity.last_modified, total)
        if self._claim is not None:
            self._claim.release()
        remaining = (total - self._offset) if total is not None else 0
        self._claim = self.shared.ledger.claim(
            self.shared.folder.path, remaining, artifact=self.artifact
        )
        self.emit("start")

    def _segmentable(self, resp: aiohttp.ClientResponse, body: Body) -> bool:
        """A fresh, large object from storage that says it serves ranges: this response
        feeds the first range, ranged requests fetch the others."""
        policy = self.shared.segments
        return (
            body.whole
            and resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            and policy.connections > 1
            and not self._single_stream_only
            and body.total is not None
            and body.total >= policy.threshold
            and body.identity.resumable
        )

    async def _stream_body(self, resp: aiohttp.ClientResponse) -> None:
        hashes = await self._hashes_of_whole()
        fd = self.partial.open(truncate=self._offset == 0)
        try:
            direct = self.partial.open_direct(fd)
        except BaseException:
            os.close(fd)
            raise
        writer = StreamWriter(
            fd, hashes, self._offset, self.artifact, on_confirmed=self._stored, direct=direct
        )
        total = self._total
        try:
            await stream_body(
                resp,
                writer,
                buffer_size=self.shared.buffer_size,
                limit=total if total is not None else self.rules.max_size,
                known_total=total is not None,
                meter=self.meter,
                idle_timeout=self.shared.settings.idle_timeout,
            )
        finally:
            await writer.close()
            self._stored(writer.confirmed)
            if not writer.hashes_valid:
                self._hashes = None  # rebuilt from the disk by the next attempt
        if total is None:  # no length announced: the end of the body is the end
            self._identity = ObjectIdentity(None, None, self._offset)
        elif self._offset < total:
            raise short_body(self._offset, total)

    async def _fetch_segmented(self, first: aiohttp.ClientResponse | None) -> None:
        identity, state = self._identity, self._segments
        self._requests += 1
        if identity is None or state is None or not identity.resumable:
            raise Restart("the segmented partial has no usable identity")
        fetch = SegmentedFetch(
            partial=self.partial,
            identity=identity,
            state=state,
            requester=self.requester,
            hashes=Hashes(self.rules.algorithms()),  # in order, from byte 0
            meter=self.meter,
            policy=self.shared.segments,
            retry=self.shared.retry,
            buffer_size=self.shared.buffer_size,
            artifact=self.artifact,
            on_retry=self._retrying,
        )
        try:
            outcome = await fetch.run(first)
        except RangesIgnored:
            self._single_stream_only = True
            raise Restart("storage ignored Range on a segment; continuing as one stream") from None
        finally:
            self._stored(fetch.done_bytes())
            self._segments = fetch.state()
            self._hashes = None  # unless complete (below), rebuilt from byte 0 next time
        self._segments = None
        self._hashes = fetch.hashes if outcome.complete else None

    def _start_over(self, *, quiet: bool = False) -> None:
        self.partial.discard()
        self._offset = 0
        self._identity = None
        self._segments = None
        self._hashes = None
        if not quiet:
            self.emit("restart")

    # Step 4 ------------------------------------------------------------------------------

    async def verify(self, received: Received) -> Check:
        """Check the complete ``.part`` (raises :class:`Mismatch`)."""
        self.emit("verifying")
        wanted = {"sha256", *await self.rules.algorithms_to_verify()}
        digests: dict[str, str] = {}
        for algorithm in wanted:
            found = received.hashes.hexdigest(algorithm)
            if found is not None:
                digests[algorithm] = found
        digests.update(await self._digests_by_reading(wanted - set(digests)))
        return await self.rules.verify(received, lambda algorithm: digests[algorithm])

    async def _digests_by_reading(self, wanted: set[str]) -> dict[str, str]:
        """Digests not computed while streaming (the manifest's algorithm was not known
        when the stream began), by one read of the file."""
        if not wanted:
            return {}
        hashes = Hashes(wanted)
        await asyncio.to_thread(self._hash_prefix, hashes)
        return {a: d for a in wanted if (d := hashes.hexdigest(a)) is not None}

    # Step 5 ------------------------------------------------------------------------------

    async def rename(self, received: Received, check: Check) -> DownloadedFile:
        """fsync, final name, record."""
        sha256 = received.hashes.hexdigest("sha256")
        if sha256 is None:
            sha256 = (await self._digests_by_reading({"sha256"}))["sha256"]
        # The thread opens, syncs and closes the file itself: a cancelled caller can
        # never close the descriptor under a running fsync.
        await asyncio.to_thread(self._fsync_partial)
        folder = self.shared.folder
        folder.replace(self.partial.part, self.final)
        folder.unlink(self.partial.sidecar)
        await asyncio.to_thread(folder.fsync)
        info = folder.lstat(self.final)
        evidence: Evidence = "streamed" if received.fetched else "rehashed"
        file = DownloadedFile(
            artifact=self.artifact,
            path=self.shared.final_directory / self.final,
            size=received.size,
            sha256=sha256,
            verified=check.verified,
            resumed_from=self._resumed_from,
            bytes_transferred=self.meter.received,
            evidence=evidence,
        )
        await self.rules.done(file, check, info.st_mtime_ns if info else 0)
        self.emit("done")
        return file

    def _fsync_partial(self) -> None:
        fd = self.partial.open()
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
