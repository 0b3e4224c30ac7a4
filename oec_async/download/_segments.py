"""One large file over several connections: ranged GETs into a preallocated ``.part``.

Used by :class:`~oec_async.download._stream.ArtifactTransfer` for a large file from
storage that advertises ranges. The design, step by step:

1. **Start as one stream, measure, then split.** The first response (a plain GET) feeds
   the whole file. After a short probe, if one connection is slow (storage caps each
   connection, as object stores do) and enough is left, more workers join: each takes
   the back half of the largest range still open (*work stealing*) and fetches it with
   ``Range: bytes=a-b`` and ``If-Range``. A fast connection is left alone: on a fast
   link, splitting only adds work for the CPU. All requests share the client's
   connector, so its global and per-host connection bounds hold.
2. **Write in place.** Workers write at their own offsets (``pwrite`` in worker threads)
   into a file preallocated to the full size: a full disk is found before the first
   byte, not at 99 %. Each worker keeps one buffer in flight while it receives the next.
3. **Hash in order.** The running hash must see bytes in order. Bytes written exactly at
   the *hash frontier* are hashed from memory, in a single ordered hash thread; bytes that
   landed ahead of it (other ranges) are read back from the page cache once the frontier
   reaches them. When the last byte lands, the digest is ready: verification streams.
4. **Resume per range.** Each range retries on its own after a drop or a stall, from its
   own position, with its own attempt counter. The sidecar records every range's
   position (a few times a second), so a crash loses only the bytes in flight.
5. **Fall back.** A 200 to a ranged request means the object changed (a different
   validator: start over) or storage ignores ranges after all: one stream from zero.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import time
from typing import TYPE_CHECKING

import aiohttp
import attrs

from oec_async._http import is_certificate_error
from oec_async.download._partial import ObjectIdentity
from oec_async.download._signals import Expired, RangesIgnored, Restart, Transient
from oec_async.download._writer import (
    WriteBehind,
    after_threads,
    hash_range,
    no_space_error,
    write_at,
)
from oec_async.errors import DownloadError, StorageError

if TYPE_CHECKING:
    from oec_async.download._stream import ArtifactTransfer
    from oec_async.download._writer import Chunk

__all__ = ["Segment", "SegmentedFetch"]

logger = logging.getLogger("oec_async.download")

_ALIGN = 64 * 1024
_HASH_BLOCK = 32 * 1024 * 1024
_SIDECAR_INTERVAL = 0.5
_TICK = 0.25


@attrs.define
class Segment:
    start: int
    end: int  # exclusive; shrinks when another worker takes the back half
    pos: int  # bytes start..pos are on disk
    claimed: int = -1  # bytes start..claimed are received or on disk (>= pos)

    def __attrs_post_init__(self) -> None:
        self.claimed = max(self.claimed, self.pos)

    @property
    def complete(self) -> bool:
        return self.pos >= self.end

    @property
    def unclaimed(self) -> int:
        return self.end - self.claimed


class SegmentedFetch:
    def __init__(self, transfer: ArtifactTransfer, segments: list[Segment]) -> None:
        self.t = transfer
        self.policy = transfer.ctx.segments
        self.segments = sorted(segments, key=lambda s: s.start)
        identity = transfer.identity
        assert identity is not None  # noqa: S101
        assert identity.size is not None  # noqa: S101
        self.identity: ObjectIdentity = identity
        self.total: int = identity.size
        self.hash_queued = 0  # bytes handed to the (ordered) hash thread
        self._hash_jobs: list[asyncio.Future[None]] = []
        self._writes: set[asyncio.Future[None]] = set()
        self._hash_lane = concurrent.futures.ThreadPoolExecutor(1, "oec-hash")
        self._unassigned = [s for s in self.segments if not s.complete]
        self._advanced = asyncio.Event()
        self._last_sidecar = 0.0
        self._received = 0
        self._active = 0
        self._fd = -1
        self._group: asyncio.TaskGroup | None = None
        self.hashed_all = False

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def connections_active(self) -> int:
        return self._active

    def done_bytes(self) -> int:
        return sum(s.pos - s.start for s in self.segments)

    @property
    def complete(self) -> bool:
        return self.hashed_all and all(s.complete for s in self.segments)

    def frontier(self) -> int:
        for segment in self.segments:
            if not segment.complete:
                return segment.pos
        return self.total

    def _save(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_sidecar >= _SIDECAR_INTERVAL:
            self._last_sidecar = now
            self.t.partial.save(self.identity, [(s.start, s.end, s.pos) for s in self.segments])

    def advance(self, segment: Segment, amount: int) -> None:
        segment.pos = min(segment.end, segment.pos + amount)
        self.t.offset = self.done_bytes()
        self._advanced.set()
        self.t.report_written(amount)
        self._save()

    @property
    def piece(self) -> int:
        return 2 * self.policy.min_size

    def _add(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.segments.sort(key=lambda s: s.start)

    def _take(self) -> Segment | None:
        """The next piece of work, in file order: the front of the first unassigned range
        (so the hash frontier keeps moving and hashing keeps pace with the download);
        when none is left, the back half of the largest range still open."""
        while self._unassigned:
            segment = self._unassigned.pop(0)
            if segment.complete:
                continue
            cut = -(-(segment.pos + self.piece) // _ALIGN) * _ALIGN
            if cut < segment.end:  # hand out one piece; the rest stays unassigned
                rest = Segment(cut, segment.end, cut)
                segment.end = cut
                self._add(rest)
                self._unassigned.insert(0, rest)
            return segment
        candidates = [s for s in self.segments if s.unclaimed >= 2 * self.policy.min_size]
        if not candidates:
            return None
        victim = max(candidates, key=lambda s: s.unclaimed)
        middle = victim.claimed + (victim.unclaimed // 2 // _ALIGN) * _ALIGN
        if not victim.claimed < middle < victim.end:
            return None
        stolen = Segment(middle, victim.end, middle)
        victim.end = middle
        self._add(stolen)
        return stolen

    # -- the run -----------------------------------------------------------------------

    async def run(self, first: aiohttp.ClientResponse | None) -> None:
        self._fd = os.open(self.t.partial.part, os.O_RDWR | os.O_CREAT, 0o600)
        self._behind = WriteBehind(self._fd)
        try:
            preallocation = asyncio.get_running_loop().run_in_executor(None, self._preallocate)
            await asyncio.shield(self._track(preallocation))  # shielded: stays tracked
            self._save(force=True)
            self.t.offset = self.done_bytes()
            async with asyncio.TaskGroup() as group:
                self._group = group
                hasher = group.create_task(self._hash_in_order())
                if first is not None:
                    first_segment = self._unassigned.pop(0)
                    if first_segment.start != 0:
                        raise AssertionError("the first response must feed the first range")
                    self._spawn(first_segment, first)
                else:  # a resume: every open range gets a worker, up to the limit
                    for _ in range(min(self.policy.connections, len(self._unassigned))):
                        self._spawn(None, None)
                scaler = group.create_task(self._scale())
                await self._all_written()
                scaler.cancel()
                await hasher
        except BaseExceptionGroup as group_error:
            raise _first_cause(group_error) from None
        finally:
            self._group = None
            self._save(force=True)
            # No thread may still use the descriptor once it is closed: a cancelled worker
            # stops waiting for its writes, but they still run.
            await after_threads([*self._hash_jobs, *self._writes], self._close)

    def _close(self) -> None:
        self._hash_lane.shutdown(wait=False)
        os.close(self._fd)

    def _spawn(self, segment: Segment | None, response: aiohttp.ClientResponse | None) -> None:
        assert self._group is not None  # noqa: S101
        self._active += 1
        self._group.create_task(self._worker(segment, response))

    def _preallocate(self) -> None:
        if os.fstat(self._fd).st_size == self.total:
            return
        try:
            os.posix_fallocate(self._fd, 0, self.total)
        except OSError as exc:
            if exc.errno in (95, 22):  # EOPNOTSUPP / EINVAL: no fallocate on this fs
                os.ftruncate(self._fd, self.total)
            else:
                raise no_space_error(exc, self.t.artifact) from None

    async def _all_written(self) -> None:
        while not all(s.complete for s in self.segments):
            self._advanced.clear()
            await self._advanced.wait()

    async def _scale(self) -> None:
        """Add connections while each one is slow and enough is left to fetch."""
        if self.policy.probe <= 0:  # split at once, measuring nothing
            self._grow()
            return
        started = time.monotonic()
        await asyncio.sleep(self.policy.probe)
        last_time, last_received = started, 0
        while self._active < self.policy.connections:
            now = time.monotonic()
            rate = (self._received - last_received) / max(now - last_time, 1e-3)
            last_time, last_received = now, self._received
            left = self.total - self.done_bytes()
            per_connection = rate / max(self._active, 1)
            if (
                per_connection < self.policy.grow_below
                and left >= 2 * self.policy.min_size
                and (rate == 0 or left / rate > 2 * _TICK)
            ):
                logger.debug(
                    "%s: %.0f MiB/s per connection, %d MiB left: splitting",
                    self.t.artifact,
                    per_connection / 2**20,
                    left // 2**20,
                )
                self._grow()
                return
            await asyncio.sleep(_TICK)

    def _grow(self) -> None:
        # The first stream keeps the piece it is in; everything after it is handed out
        # piece by piece, in order.
        head = next(
            (s for s in self.segments if not s.complete and s not in self._unassigned), None
        )
        if head is not None:
            cut = -(-(head.claimed + self.piece) // _ALIGN) * _ALIGN
            if cut < head.end:
                rest = Segment(cut, head.end, cut)
                head.end = cut
                self._add(rest)
                self._unassigned.insert(0, rest)
        for _ in range(self.policy.connections - self._active):
            self._spawn(None, None)

    async def _hash_in_order(self) -> None:
        """Hash what landed ahead of the frontier once the frontier reaches it."""
        hashes = self.t.hashes
        assert hashes is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        while self.hash_queued < self.total:
            frontier = self.frontier()
            if frontier <= self.hash_queued:
                self._advanced.clear()
                await self._advanced.wait()
                continue
            start, end = self.hash_queued, min(frontier, self.hash_queued + _HASH_BLOCK)
            self.hash_queued = end
            job = loop.run_in_executor(self._hash_lane, self._hash_from_disk, start, end)
            self._hash_jobs.append(job)
            await asyncio.shield(job)
            self._hash_jobs = [j for j in self._hash_jobs if not j.done()]
        if self._hash_jobs:
            await asyncio.gather(*self._hash_jobs)
        self.hashed_all = True

    async def _worker(
        self, segment: Segment | None, response: aiohttp.ClientResponse | None
    ) -> None:
        try:
            while True:
                if segment is None:
                    segment = self._take()
                    if segment is None:
                        return
                await self._fill(segment, response)
                response = None
                segment = None
        finally:
            self._active -= 1

    async def _fill(self, segment: Segment, response: aiohttp.ClientResponse | None) -> None:
        """Bring one range to its (possibly shrinking) end, retrying on its own."""
        failures = 0
        refreshes = 0
        while not segment.complete:
            before = segment.pos
            reason = ""
            delay: float | None = None
            try:
                if response is not None:
                    first, response = response, None
                    await self._read(segment, first)
                else:
                    await self._request(segment)
                continue
            except Expired:
                refreshes += 1
                if refreshes > 3:
                    raise StorageError(
                        "storage keeps refusing freshly signed URLs", artifact=self.t.artifact
                    ) from None
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                if is_certificate_error(exc):
                    raise StorageError(
                        "storage's TLS certificate is not trusted", artifact=self.t.artifact
                    ) from None
                reason = "stalled" if isinstance(exc, TimeoutError) else type(exc).__name__
            except Transient as exc:
                reason, delay = str(exc), exc.delay
            failures = 1 if segment.pos > before else failures + 1
            if failures > self.t.ctx.policy.max_retries:
                raise DownloadError(
                    f"a range gave up after {failures} failed attempts (last: {reason}); "
                    "the bytes on disk are kept for a resume",
                    artifact=self.t.artifact,
                )
            wait = delay if delay is not None else self.t.ctx.policy.backoff(failures)
            logger.info(
                "%s: range at byte %d %s; retry %d in %.2f s",
                self.t.artifact,
                segment.pos,
                reason,
                failures,
                wait,
            )
            await asyncio.sleep(wait)

    async def _request(self, segment: Segment) -> None:
        url, generation = await self.t.ctx.urls.get(self.t.artifact)
        headers = {
            "Accept-Encoding": "identity",
            "Range": f"bytes={segment.pos}-{segment.end - 1}",
        }
        if self.identity.if_range:
            headers["If-Range"] = self.identity.if_range
        async with self.t.ctx.session.get(
            url, headers=headers, timeout=self.t.stream_timeout(), ssl=self.t.ctx.ssl
        ) as resp:
            if resp.status in (400, 401, 403):
                await self.t.ctx.urls.refresh(generation)
                raise Expired
            self.t.check_status(resp)  # raises for errors other than 200/206
            fresh = ObjectIdentity.from_headers(resp.headers, self.total)
            if resp.status == 200:
                if not self.identity.same_object(fresh):
                    raise Restart("the object changed during a segmented download")
                raise RangesIgnored
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {segment.pos}-") or not content_range.endswith(
                f"/{self.total}"
            ):
                raise Restart("a range's Content-Range does not match the range asked for")
            if not self.identity.same_object(fresh):
                raise Restart("the object changed during a segmented download")
            await self._read(segment, resp)

    async def _read(self, segment: Segment, resp: aiohttp.ClientResponse) -> None:
        lane = _WorkerLane(self, segment)
        chunks: list[Chunk] = []
        gathered = 0
        size = self.t.ctx.buffer_size
        try:
            async for chunk in resp.content.iter_any():
                self.t.bytes_transferred += len(chunk)
                self._received += len(chunk)
                room = segment.end - segment.claimed
                if room <= 0:
                    break  # another worker took the rest of this range
                piece: Chunk = chunk if len(chunk) <= room else memoryview(chunk)[:room]
                chunks.append(piece)
                gathered += len(piece)
                segment.claimed += len(piece)
                if gathered >= size or segment.claimed >= segment.end:
                    await lane.submit(chunks)
                    chunks, gathered = [], 0
                if segment.claimed >= segment.end:
                    break  # our (possibly shrunk) end: hang up on the rest
        finally:
            if chunks:  # bytes received before a failure are good: keep them
                await asyncio.shield(lane.submit(chunks))
            await asyncio.shield(lane.settle())
            segment.claimed = segment.pos
        if not segment.complete:
            raise Transient(f"body ended at byte {segment.pos}")

    def _hash_from_disk(self, start: int, end: int) -> None:
        """(In the hash thread.) Bytes that landed ahead of the frontier, read back."""
        hashes = self.t.hashes
        assert hashes is not None  # noqa: S101
        hash_range(self._fd, start, end, hashes)
        self._behind.advance(end)  # behind the hash, nothing reads the file again

    def queue_hash(self, offset: int, chunks: list[Chunk]) -> asyncio.Future[None] | None:
        """Hash ``chunks`` from memory if they sit exactly at the hash frontier."""
        if offset != self.hash_queued:
            return None
        hashes = self.t.hashes
        assert hashes is not None  # noqa: S101
        self.hash_queued += sum(len(c) for c in chunks)
        end = self.hash_queued

        def hash_chunks() -> None:
            hashes.update_all(chunks)
            # Behind the hash, nothing reads the file again: let the kernel write it out.
            self._behind.advance(end)

        job = asyncio.get_running_loop().run_in_executor(self._hash_lane, hash_chunks)
        self._hash_jobs.append(job)
        return job

    def write(self, chunks: list[Chunk], offset: int) -> asyncio.Future[None]:
        job = asyncio.get_running_loop().run_in_executor(
            None, write_at, self._fd, chunks, offset, self.t.artifact
        )
        return self._track(job)

    def _track(self, job: asyncio.Future[None]) -> asyncio.Future[None]:
        """Every job that uses the descriptor is known, so that it is closed after them."""
        self._writes.add(job)
        job.add_done_callback(self._write_done)
        return job

    def _write_done(self, job: asyncio.Future[None]) -> None:
        self._writes.discard(job)
        if not job.cancelled():
            job.exception()  # whoever awaits it still gets the error; nobody else logs it


class _WorkerLane:
    """One worker's buffers in flight: written (and hashed, at the frontier) while the
    worker receives the next ones. Up to four while one connection does all the work
    (keeping the hash thread busy is what sets the speed), two each once split (memory
    stays bounded whatever the number of connections)."""

    def __init__(self, fetch: SegmentedFetch, segment: Segment) -> None:
        self.fetch = fetch
        self.segment = segment
        self.next_offset = segment.pos
        self._inflight: collections.deque[
            tuple[asyncio.Future[None], asyncio.Future[None] | None, int]
        ] = collections.deque()

    async def submit(self, chunks: list[Chunk]) -> None:
        depth = 4 if self.fetch.connections_active <= 1 else 2
        while len(self._inflight) >= depth:
            await self._retire()
        size = sum(len(c) for c in chunks)
        offset, self.next_offset = self.next_offset, self.next_offset + size
        written = self.fetch.write(chunks, offset)
        hashed = self.fetch.queue_hash(offset, chunks)
        self._inflight.append((written, hashed, size))

    async def _retire(self) -> None:
        written, hashed, size = self._inflight[0]
        await asyncio.shield(written)
        if hashed is not None:
            await asyncio.shield(hashed)
        self._inflight.popleft()
        self.fetch.advance(self.segment, size)

    async def settle(self) -> None:
        """Wait for every buffer in flight; what reached the disk counts, in order, up to
        the first failure (which is then raised)."""
        futures = [f for w, h, _ in self._inflight for f in (w, h) if f is not None]
        if futures:
            await asyncio.shield(asyncio.wait(futures))
        try:
            while self._inflight:
                await self._retire()
        finally:
            for future in futures:  # the first error is raised; the rest are consequences
                if not future.cancelled():
                    future.exception()


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a failed TaskGroup: the first that is not a cancellation."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_cause(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
