"""One large file over several connections: ranged GETs into a preallocated ``.part``.

Used by the transfer for a large file from storage that advertises ranges. Step by step:

1. **Record, then preallocate.** The sidecar is written with every range at its start
   *before* the file is preallocated to full length, so a crash in between leaves a file
   of zeros that the sidecar says holds nothing yet (never one that looks complete).
   Preallocating finds a full disk before the first byte, not at 99 %.
2. **Start as one stream, measure, then split.** The first response (a plain GET) feeds
   the whole file. After a short probe, if one connection is slow (storage caps each
   connection, as object stores do) and enough is left, more workers join: each takes
   the next piece in file order (so the in-order hash keeps pace), and at the tail the
   back half of the largest range still open (*work stealing*). A fast connection is left
   alone: on a fast link, splitting only adds work for the CPU. All requests share the
   client's connector, so its connection bounds hold.
3. **Write in place, hash in order.** Workers write at their own offsets (``pwrite`` in
   worker threads). Bytes written exactly at the *hash frontier* are hashed from memory;
   bytes that landed ahead of it are read back from the page cache once the frontier
   reaches them. When the last byte lands, the digest is ready.
4. **Resume per range.** Each range retries on its own (:class:`~._attempts.Attempts`,
   the same engine as a single stream), from its own position. The sidecar records every
   range's position twice a second while anything changed, and at every retry, so a
   crash (even while a range is stalled) loses only the bytes in flight.
5. **Fall back.** A 200 to a ranged request means the object changed (start over) or
   storage ignores ranges after all (one stream from zero).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import time
from collections.abc import Callable

import aiohttp
import attrs

from oec_async._retry import RetryPolicy
from oec_async.download._attempts import Attempts
from oec_async.download._judge import Ask
from oec_async.download._partial import ObjectIdentity, PartialFile, SegmentState
from oec_async.download._receive import Batcher, Meter
from oec_async.download._request import Requester
from oec_async.download._signals import RangesIgnored, Restart, Transient
from oec_async.download._takeover import BufferPool, TakenBody, takeover_length
from oec_async.download._writer import (
    Chunk,
    DirectWrites,
    Hashes,
    WriteBehind,
    after_threads,
    hash_range,
    no_space_error,
    when_done,
    write_at,
)
from oec_async.download.options import SegmentPolicy

__all__ = ["Segment", "SegmentOutcome", "SegmentedFetch", "take_piece"]

logger = logging.getLogger("oec_async.download")

_ALIGN = 64 * 1024
#: What the ranges of one file may hold in memory, all connections together: about five
#: chunks each (aiohttp's buffer of two, one being gathered, two in the worker threads).
_RANGE_MEMORY = 8 * 1024 * 1024
_MIN_CHUNK = 64 * 1024
_HASH_BLOCK = 32 * 1024 * 1024
_SIDECAR_INTERVAL = 0.5
_TICK = 0.25


@attrs.define
class Segment:
    """One range of the file: bytes ``start..pos`` are on disk, up to ``end``."""

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


@attrs.frozen
class SegmentOutcome:
    """Where a segmented fetch stopped: its ranges, and whether all are on disk and
    hashed (then the hashes given to it hold the whole file's digest)."""

    state: SegmentState
    done: int
    complete: bool


def _align_up(value: int) -> int:
    return -(-value // _ALIGN) * _ALIGN


def _piece_end(position: int, end: int, piece: int, min_size: int) -> int | None:
    """Where to cut a range fetched from ``position`` after one ``piece`` (on an aligned
    offset); None to keep it whole, when the rest would be a range below ``min_size``."""
    cut = _align_up(position + piece)
    return cut if end - cut >= min_size else None


def take_piece(
    segments: list[Segment], unassigned: list[Segment], piece: int, min_size: int
) -> Segment | None:
    """The next range to fetch: the front ``piece`` of the first unassigned range (in
    file order, so the hash frontier keeps moving; a rest below ``min_size`` goes with
    it); when none is left, the back half of the largest range still open (stealing).
    Splits ranges in place; ``segments`` stays sorted. None when nothing is worth a new
    connection."""
    while unassigned:
        segment = unassigned.pop(0)
        if segment.complete:
            continue
        cut = _piece_end(segment.pos, segment.end, piece, min_size)
        if cut is not None:  # hand out one piece; the rest stays unassigned
            rest = Segment(cut, segment.end, cut)
            segment.end = cut
            _insert(segments, rest)
            unassigned.insert(0, rest)
        return segment
    candidates = [s for s in segments if s.unclaimed >= 2 * min_size]
    if not candidates:
        return None
    victim = max(candidates, key=lambda s: s.unclaimed)
    middle = victim.claimed + (victim.unclaimed // 2 // _ALIGN) * _ALIGN
    if not victim.claimed < middle < victim.end:
        return None
    stolen = Segment(middle, victim.end, middle)
    victim.end = middle
    _insert(segments, stolen)
    return stolen


def _insert(segments: list[Segment], segment: Segment) -> None:
    segments.append(segment)
    segments.sort(key=lambda s: s.start)


class SegmentedFetch:
    """Fetch the open ranges of one file, over up to ``policy.connections`` connections.

    Args:
        partial: the ``.part`` and its sidecar.
        identity: the object (with a validator and a size) the ranges are of.
        state: the ranges, as loaded or ``[(0, size, 0)]`` for a fresh file.
        requester: asks storage for a range.
        hashes: fed in file order from byte 0; complete when the fetch is.
        meter: counts received bytes, told the bytes on disk.
        policy, retry: when to split; how each range retries.
        buffer_size: bytes gathered per write.
        artifact: for messages.
        on_retry: told each time a range waits to retry (a progress event).
    """

    def __init__(
        self,
        *,
        partial: PartialFile,
        identity: ObjectIdentity,
        state: SegmentState,
        requester: Requester,
        hashes: Hashes,
        meter: Meter,
        policy: SegmentPolicy,
        retry: RetryPolicy,
        buffer_size: int,
        artifact: str,
        on_retry: Callable[[str], None],
    ) -> None:
        if identity.size is None:
            raise ValueError("a segmented fetch needs the object's size")
        self.partial = partial
        self.identity = identity
        self.total: int = identity.size
        self.segments = sorted((Segment(*s) for s in state), key=lambda s: s.start)
        self.requester = requester
        self.hashes = hashes
        self.meter = meter
        self.policy = policy
        self.retry = retry
        self.buffer_size = buffer_size
        self.artifact = artifact
        self.on_retry = on_retry
        self.hash_queued = 0  # bytes handed to the (ordered) hash thread
        self._hash_jobs: list[asyncio.Future[None]] = []
        self._writes: set[asyncio.Future[None]] = set()
        self._hash_lane = concurrent.futures.ThreadPoolExecutor(1, "oec-hash")
        self._unassigned = [s for s in self.segments if not s.complete]
        self._advanced = asyncio.Event()
        self._dirty = False
        self._hashed_all = False
        self._received = 0
        self._active = 0
        self._fd = -1
        self._behind: WriteBehind | None = None
        self._direct = DirectWrites(None)
        self._group: asyncio.TaskGroup | None = None

    # -- bookkeeping -------------------------------------------------------------------

    @property
    def connections_active(self) -> int:
        return self._active

    def done_bytes(self) -> int:
        return sum(s.pos - s.start for s in self.segments)

    def state(self) -> SegmentState:
        return [(s.start, s.end, s.pos) for s in self.segments]

    def outcome(self) -> SegmentOutcome:
        complete = self._hashed_all and all(s.complete for s in self.segments)
        return SegmentOutcome(self.state(), self.done_bytes(), complete)

    def frontier(self) -> int:
        return next((s.pos for s in self.segments if not s.complete), self.total)

    def save(self) -> None:
        """Record every range's position in the sidecar (atomically)."""
        self._dirty = False
        self.partial.save(self.identity, self.state())

    def advance(self, segment: Segment, amount: int) -> None:
        segment.pos = min(segment.end, segment.pos + amount)
        self._dirty = True
        self._advanced.set()
        self.meter.stored(self.done_bytes())

    # -- the run -----------------------------------------------------------------------

    async def run(self, first: aiohttp.ClientResponse | None) -> SegmentOutcome:
        """Fetch until every range is on disk and hashed (or raise); ``first`` is the
        response of a fresh file's first request, which feeds its first range."""
        self.save()  # before the preallocation: see step 1
        self._fd = self.partial.open()
        self._behind = WriteBehind(self._fd)
        try:
            self._direct = DirectWrites(self.partial.open_direct(self._fd))
        except BaseException:
            os.close(self._fd)
            raise
        try:
            preallocation = asyncio.get_running_loop().run_in_executor(None, self._preallocate)
            await asyncio.shield(self._track(preallocation))  # shielded: stays tracked
            async with asyncio.TaskGroup() as group:
                self._group = group
                hasher = group.create_task(self._hash_in_order())
                saver = group.create_task(self._save_periodically())
                self._start_workers(first)
                scaler = group.create_task(self._scale())
                await self._all_written()
                scaler.cancel()
                await hasher
                saver.cancel()
        except BaseExceptionGroup as group_error:
            raise _first_cause(group_error) from None
        finally:
            self._group = None
            self.save()
            # No thread may still use the descriptor once it is closed: a cancelled worker
            # stops waiting for its writes, but they still run.
            await after_threads([*self._hash_jobs, *self._writes], self._close)
        return self.outcome()

    def _start_workers(self, first: aiohttp.ClientResponse | None) -> None:
        if first is not None:
            head = self._unassigned.pop(0)
            if head.start != 0:
                raise AssertionError("the first response must feed the first range")
            self._spawn(head, first)
            return
        # A resume: every open range gets a worker, up to the limit.
        for _ in range(min(self.policy.connections, len(self._unassigned))):
            self._spawn(None, None)

    def _close(self) -> None:
        self._hash_lane.shutdown(wait=False)
        self._direct.close()
        os.close(self._fd)

    def _spawn(self, segment: Segment | None, response: aiohttp.ClientResponse | None) -> None:
        if self._group is None:
            raise AssertionError("workers start inside the run")
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
                raise no_space_error(exc, self.artifact) from None

    async def _all_written(self) -> None:
        while not all(s.complete for s in self.segments):
            self._advanced.clear()
            await self._advanced.wait()

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(_SIDECAR_INTERVAL)
            if self._dirty:
                self.save()

    async def _scale(self) -> None:
        """Add connections while each one is slow and enough is left to fetch."""
        if self.policy.probe <= 0:  # split at once, measuring nothing
            self._grow()
            return
        await asyncio.sleep(self.policy.probe)
        last_time, last_received = time.monotonic() - self.policy.probe, 0
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
                    self.artifact,
                    per_connection / 2**20,
                    left // 2**20,
                )
                self._grow()
                return
            await asyncio.sleep(_TICK)

    @property
    def _chunk(self) -> int:
        """Bytes per read and per write of a range: the buffer size, less when many
        connections share the memory of one file (it stays flat whatever ``segments``)."""
        per_connection = _RANGE_MEMORY // (5 * max(1, self.policy.connections))
        return max(_MIN_CHUNK, min(self.buffer_size, per_connection))

    @property
    def _piece(self) -> int:
        return 2 * self.policy.min_size

    def _grow(self) -> None:
        # The first stream keeps the piece it is in; everything after it is handed out
        # piece by piece, in order.
        head = next(
            (s for s in self.segments if not s.complete and s not in self._unassigned), None
        )
        if head is not None:
            cut = _piece_end(head.claimed, head.end, self._piece, self.policy.min_size)
            if cut is not None:
                rest = Segment(cut, head.end, cut)
                head.end = cut
                _insert(self.segments, rest)
                self._unassigned.insert(0, rest)
        for _ in range(self.policy.connections - self._active):
            self._spawn(None, None)

    async def _hash_in_order(self) -> None:
        """Hash what landed ahead of the frontier once the frontier reaches it."""
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
        self._hashed_all = True

    # -- one worker, one range at a time -------------------------------------------------

    async def _worker(
        self, segment: Segment | None, response: aiohttp.ClientResponse | None
    ) -> None:
        try:
            while True:
                if segment is None:
                    segment = take_piece(
                        self.segments, self._unassigned, self._piece, self.policy.min_size
                    )
                    if segment is None:
                        return
                await self._fill(segment, response)
                response = None
                segment = None
        finally:
            self._active -= 1

    async def _fill(self, segment: Segment, response: aiohttp.ClientResponse | None) -> None:
        """Bring one range to its (possibly shrinking) end, retrying on its own."""
        first = [response]

        async def once() -> None:
            given, first[0] = first[0], None
            if given is not None:
                await self._read(segment, given, first=True)
            else:
                await self._request(segment)

        attempts = Attempts(self.retry, self.artifact, where="a range", on_retry=self._retrying)
        while not segment.complete:
            await attempts.attempt(once, lambda: segment.pos)

    def _retrying(self, reason: str) -> None:
        self.save()  # a stalled range's progress is on record before the wait
        self.on_retry(reason)

    async def _request(self, segment: Segment) -> None:
        ask = Ask(start=segment.pos, end=segment.end, identity=self.identity)
        opened = self.requester.open(ask, own_budget=True, read_bufsize=self._chunk)
        async with opened as (resp, body):
            if body.whole:
                if body.changed:
                    raise Restart("the object changed during a segmented download")
                raise RangesIgnored
            await self._read(segment, resp)

    async def _read(
        self, segment: Segment, resp: aiohttp.ClientResponse, *, first: bool = False
    ) -> None:
        """Receive one response into ``segment`` up to its (possibly shrinking) end. The
        first response (the whole object, its connection never reused) takes the fast
        path when it can; a range keeps aiohttp's path, whose connection is kept alive
        for the next range."""
        lane = _WorkerLane(self, segment)
        if first and takeover_length(resp, self.buffer_size) is not None:
            await self._read_taken(segment, resp, lane)
        else:
            await self._read_chunks(segment, resp, lane)
        if not segment.complete:
            raise Transient(f"body ended at byte {segment.pos}")

    def _got(self, segment: Segment, amount: int) -> None:
        self.meter.got(amount)
        self._received += amount
        segment.claimed += amount

    async def _read_taken(
        self, segment: Segment, resp: aiohttp.ClientResponse, lane: _WorkerLane
    ) -> None:
        body = TakenBody(
            resp,
            start=segment.claimed,
            end=lambda: segment.end,
            pool=BufferPool(_WorkerLane.MAX_DEPTH + 1, self.buffer_size),
            idle_timeout=self.requester.settings.idle_timeout,
            on_received=lambda amount: self._got(segment, amount),
            artifact=self.artifact,
        )
        try:
            await body.hand_over(lane.submit)
        finally:
            await asyncio.shield(lane.settle())
            body.close()
            segment.claimed = segment.pos

    async def _read_chunks(
        self, segment: Segment, resp: aiohttp.ClientResponse, lane: _WorkerLane
    ) -> None:
        batcher = Batcher(self._chunk)
        try:
            async for chunk in resp.content.iter_any():
                self.meter.got(len(chunk))
                self._received += len(chunk)
                room = segment.end - segment.claimed
                if room <= 0:
                    break  # another worker took the rest of this range
                piece: Chunk = chunk if len(chunk) <= room else memoryview(chunk)[:room]
                segment.claimed += len(piece)
                batch = batcher.add(piece)
                if batch is None and segment.claimed >= segment.end:
                    batch = batcher.take()
                if batch:
                    await lane.submit(batch)
                if segment.claimed >= segment.end:
                    break  # our (possibly shrunk) end: hang up on the rest
        finally:
            if batch := batcher.take():  # bytes received before a failure are good
                await asyncio.shield(lane.submit(batch))
            await asyncio.shield(lane.settle())
            segment.claimed = segment.pos

    # -- the threads -----------------------------------------------------------------------

    def _hash_from_disk(self, start: int, end: int) -> None:
        """(In the hash thread.) Bytes that landed ahead of the frontier, read back."""
        hash_range(self._fd, start, end, self.hashes)
        if self._behind is not None:
            self._behind.advance(end)  # behind the hash, nothing reads the file again

    def queue_hash(self, offset: int, chunks: list[Chunk]) -> asyncio.Future[None] | None:
        """Hash ``chunks`` from memory if they sit exactly at the hash frontier."""
        if offset != self.hash_queued:
            return None
        self.hash_queued += sum(len(c) for c in chunks)
        end, behind, hashes = self.hash_queued, self._behind, self.hashes

        def hash_chunks() -> None:
            hashes.update_all(chunks)
            if behind is not None:  # behind the hash, nothing reads the file again
                behind.advance(end)

        job = asyncio.get_running_loop().run_in_executor(self._hash_lane, hash_chunks)
        self._hash_jobs.append(job)
        return job

    def write(self, chunks: list[Chunk], offset: int, aligned: bool) -> asyncio.Future[None]:
        job = asyncio.get_running_loop().run_in_executor(
            None, self._write_job, chunks, offset, aligned
        )
        return self._track(job)

    def _write_job(self, chunks: list[Chunk], offset: int, aligned: bool) -> None:
        """(In a worker thread.) Directly where the buffer allows it, else as usual."""
        try:
            if self._direct.write(chunks, offset, aligned=aligned):
                return
        except OSError as exc:
            raise no_space_error(exc, self.artifact) from None
        write_at(self._fd, chunks, offset, self.artifact)

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

    MAX_DEPTH = 4

    def __init__(self, fetch: SegmentedFetch, segment: Segment) -> None:
        self.fetch = fetch
        self.segment = segment
        self.next_offset = segment.pos
        self._inflight: collections.deque[
            tuple[asyncio.Future[None], asyncio.Future[None] | None, int]
        ] = collections.deque()

    async def submit(
        self,
        chunks: list[Chunk],
        *,
        released: Callable[[], None] | None = None,
        aligned: bool = False,
    ) -> None:
        """Write ``chunks`` next in this range (and hash them, at the frontier);
        ``released`` is called once no thread uses them any more; ``aligned`` as for
        :meth:`~._writer.StreamWriter.write`."""
        depth = self.MAX_DEPTH if self.fetch.connections_active <= 1 else 2
        while len(self._inflight) >= depth:
            await self._retire()
        size = sum(len(c) for c in chunks)
        offset, self.next_offset = self.next_offset, self.next_offset + size
        written = self.fetch.write(chunks, offset, aligned)
        hashed = self.fetch.queue_hash(offset, chunks)
        self._inflight.append((written, hashed, size))
        if released is not None:
            when_done([written] if hashed is None else [written, hashed], released)
        # Counted as on disk the moment it is, not when the next buffer comes (which, on a
        # stalled connection, may be never): progress and the sidecar follow the disk.
        written.add_done_callback(self._count_finished)
        if hashed is not None:
            hashed.add_done_callback(self._count_finished)

    def _count_finished(self, _: object = None) -> None:
        """Advance the range over every leading buffer that is written (and hashed)."""
        while self._inflight:
            written, hashed, size = self._inflight[0]
            jobs = (written,) if hashed is None else (written, hashed)
            if not all(j.done() and not j.cancelled() and j.exception() is None for j in jobs):
                return
            self._inflight.popleft()
            self.fetch.advance(self.segment, size)

    async def _retire(self) -> None:
        """Wait for the oldest buffer in flight (raising its failure), then count it."""
        written, hashed, _ = self._inflight[0]
        await asyncio.shield(written)
        if hashed is not None:
            await asyncio.shield(hashed)
        self._count_finished()

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
