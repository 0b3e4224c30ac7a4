"""One large file over several connections: ranged GETs into a preallocated ``.part``.

Used by :class:`~oec_async.download._stream.ArtifactTransfer` when the file is large and
storage has proved it honours ``Range`` (it answered ``bytes=0-`` with a 206 and a strong
validator). The design, step by step:

1. **Split.** The file is cut into up to ``segments`` ranges. The first response (already
   open, from ``bytes=0-``) feeds the first range; every other range gets its own
   ``Range: bytes=a-b`` request with ``If-Range``. All requests share the client's
   connector, so the global and per-host connection bounds hold.
2. **Write in place.** Each worker writes at its own offsets (``pwrite`` in a worker
   thread) into a file preallocated to the full size: a full disk is found before the
   first byte, not at 99 %.
3. **Hash in order.** A separate task follows the *frontier*, the end of the contiguous
   prefix of finished bytes, and feeds it to the running hash (from the page cache), so
   verification is still streaming: when the last byte lands, the digest is ready.
4. **Resume per segment.** Each range retries on its own after a drop or a stall, from its
   own position, with its own attempt counter. The sidecar records every range's
   position, so a crash loses only the bytes in flight.
5. **Steal work.** A worker that finishes early splits the largest remaining range in two
   and takes the back half: one slow connection does not hold the whole file back.
6. **Fall back.** A 200 to a ranged request means the object changed (different
   validator: start over) or storage ignores ranges after all: the transfer restarts as a
   single stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

import aiohttp
import attrs

from oec_async.download._partial import ObjectIdentity
from oec_async.download._signals import Expired, RangesIgnored, Transient
from oec_async.errors import DownloadError, StorageError

if TYPE_CHECKING:
    from oec_async.download._stream import ArtifactTransfer

__all__ = ["Segment", "SegmentedFetch", "plan_segments"]

logger = logging.getLogger("oec_async.download")

_ALIGN = 64 * 1024
_HASH_BLOCK = 8 * 1024 * 1024
_SIDECAR_INTERVAL = 0.5


@attrs.define
class Segment:
    start: int
    end: int  # exclusive; shrinks when another worker steals the back half
    pos: int  # next byte to write; start <= pos <= end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    @property
    def complete(self) -> bool:
        return self.pos >= self.end


def plan_segments(total: int, count: int) -> list[Segment]:
    """``count`` ranges of (almost) equal size, aligned to 64 KiB."""
    size = max(_ALIGN, -(-total // count // _ALIGN) * _ALIGN)
    starts = list(range(0, total, size))
    return [Segment(s, min(s + size, total), s) for s in starts]


def _hash_range(fd: int, start: int, end: int, update: object) -> None:
    position = start
    while position < end:
        block = os.pread(fd, min(_HASH_BLOCK, end - position), position)
        if not block:
            raise OSError("the partial file is shorter than its segments say")
        update(block)  # type: ignore[operator]
        position += len(block)


class SegmentedFetch:
    def __init__(self, transfer: ArtifactTransfer, segments: list[Segment], workers: int) -> None:
        self.t = transfer
        self.segments = sorted(segments, key=lambda s: s.start)
        self.workers = max(1, workers)
        identity = transfer.identity
        assert identity is not None  # noqa: S101
        assert identity.size is not None  # noqa: S101
        self.identity: ObjectIdentity = identity
        self.total: int = identity.size
        self.hashed = 0
        self._unassigned = [s for s in self.segments if not s.complete]
        self._advanced = asyncio.Event()
        self._last_sidecar = 0.0
        self._fd = -1

    # -- bookkeeping -------------------------------------------------------------------

    def done_bytes(self) -> int:
        return sum(s.pos - s.start for s in self.segments)

    @property
    def complete(self) -> bool:
        return self.hashed == self.total and all(s.complete for s in self.segments)

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

    def _advance(self, segment: Segment, amount: int) -> None:
        segment.pos += amount
        self.t.offset = self.done_bytes()
        self._advanced.set()
        self.t.report_written(amount)
        self._save()

    def _take(self) -> Segment | None:
        """An unassigned range, else the back half of the largest one in progress."""
        if self._unassigned:
            return self._unassigned.pop(0)
        candidates = [s for s in self.segments if s.remaining >= 2 * self.t.min_segment_size]
        if not candidates:
            return None
        victim = max(candidates, key=lambda s: s.remaining)
        middle = victim.pos + (victim.remaining // 2 // _ALIGN) * _ALIGN
        if middle <= victim.pos or middle >= victim.end:
            return None
        stolen = Segment(middle, victim.end, middle)
        victim.end = middle
        self.segments.append(stolen)
        self.segments.sort(key=lambda s: s.start)
        return stolen

    # -- the run -----------------------------------------------------------------------

    async def run(self, first: aiohttp.ClientResponse | None) -> None:
        self._fd = os.open(self.t.partial.part, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(self._preallocate)
            self._save(force=True)
            self.t.offset = self.done_bytes()
            async with asyncio.TaskGroup() as group:
                hasher = group.create_task(self._hash_in_order())
                first_segment = self._unassigned.pop(0) if first is not None else None
                if first_segment is not None and first_segment.start != 0:
                    raise AssertionError("the first response must feed the first range")
                for index in range(self.workers):
                    segment = first_segment if index == 0 else None
                    group.create_task(self._worker(segment, first if index == 0 else None))
                await self._all_written()
                await hasher
        except BaseExceptionGroup as group_error:
            raise _first_cause(group_error) from None
        finally:
            self._save(force=True)
            os.close(self._fd)

    def _preallocate(self) -> None:
        if os.fstat(self._fd).st_size == self.total:
            return
        try:
            os.posix_fallocate(self._fd, 0, self.total)
        except OSError as exc:
            if exc.errno in (95, 22):  # EOPNOTSUPP / EINVAL: no fallocate on this fs
                os.ftruncate(self._fd, self.total)
            else:
                raise

    async def _all_written(self) -> None:
        while not all(s.complete for s in self.segments):
            self._advanced.clear()
            await self._advanced.wait()

    async def _hash_in_order(self) -> None:
        hashes = self.t.hashes
        assert hashes is not None  # noqa: S101
        while self.hashed < self.total:
            frontier = self.frontier()
            if frontier <= self.hashed:
                self._advanced.clear()
                await self._advanced.wait()
                continue
            end = min(frontier, self.hashed + 4 * _HASH_BLOCK)
            await asyncio.to_thread(_hash_range, self._fd, self.hashed, end, hashes.update)
            self.hashed = end

    async def _worker(
        self, segment: Segment | None, response: aiohttp.ClientResponse | None
    ) -> None:
        while True:
            if segment is None:
                segment = self._take()
                if segment is None:
                    return
            await self._fill(segment, response)
            response = None
            segment = None

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
                reason = "stalled" if isinstance(exc, TimeoutError) else type(exc).__name__
            except Transient as exc:
                reason, delay = str(exc), exc.delay
            failures = 1 if segment.pos > before else failures + 1
            if failures > self.t.ctx.policy.max_retries:
                raise DownloadError(
                    f"a segment gave up after {failures} failed attempts (last: {reason}); "
                    "the bytes on disk are kept for a resume",
                    artifact=self.t.artifact,
                )
            wait = delay if delay is not None else self.t.ctx.policy.backoff(failures)
            logger.info(
                "%s: segment at byte %d %s; retry %d in %.2f s",
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
                    raise self.t.restart_error("the object changed during a segmented download")
                raise RangesIgnored
            expected = f"bytes {segment.pos}-"
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(expected) or not content_range.endswith(
                f"/{self.total}"
            ):
                raise self.t.restart_error(
                    "a segment's Content-Range does not match the range asked for"
                )
            if not self.identity.same_object(fresh):
                raise self.t.restart_error("the object changed during a segmented download")
            await self._read(segment, resp)

    async def _read(self, segment: Segment, resp: aiohttp.ClientResponse) -> None:
        buffer = bytearray()
        size = self.t.ctx.buffer_size
        try:
            async for chunk in resp.content.iter_any():
                self.t.bytes_transferred += len(chunk)
                room = segment.end - segment.pos - len(buffer)
                buffer += chunk if len(chunk) <= room else memoryview(chunk)[:room]
                if len(buffer) >= size or len(buffer) >= segment.end - segment.pos:
                    await self._write(segment, buffer)
                    buffer = bytearray()
                if segment.complete:
                    return  # our (possibly shrunk) end: drop the rest of this response
        finally:
            if buffer:  # bytes received before a failure are good: keep them
                await self._write(segment, buffer)
        if not segment.complete:
            raise Transient(f"body ended at byte {segment.pos}")

    async def _write(self, segment: Segment, buffer: bytearray) -> None:
        data = buffer[: max(0, segment.end - segment.pos)]
        if not data:
            return
        await asyncio.to_thread(self.t.write_at, self._fd, [data], segment.pos)
        self._advance(segment, len(data))


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a failed TaskGroup: the first that is not a cancellation."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_cause(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
