"""Bytes to disk and into the running hash, off the event loop, in parallel.

The event loop only receives: for every buffer it gathers, one worker thread writes it
(``pwritev`` of the received chunks, no joining copy; a buffer of the fast receive path
directly, with ``O_DIRECT``, see :class:`DirectWrites`) while another feeds it to the
hash, in order. Up to ``max_inflight`` buffers are in flight, so memory stays bounded
(``buffer_size * max_inflight`` per stream) while the three jobs overlap: on a two-core
machine receiving, hashing and writing a GiB take about as long as the slowest of them.
hashlib and os.pwritev release the GIL on large buffers, which is what makes this pay.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import hashlib
import mmap
import os
from collections.abc import Callable, Sequence
from typing import Any

from oec_async.download._disk import is_out_of_space
from oec_async.errors import InsufficientSpaceError

__all__ = [
    "Chunk",
    "DirectWrites",
    "Hashes",
    "StreamWriter",
    "WriteBehind",
    "after_threads",
    "hash_range",
    "no_space_error",
    "when_done",
    "write_at",
]

_READ_BLOCK = 1024 * 1024
Chunk = bytes | bytearray | memoryview


class Hashes:
    """Running digests (always SHA-256, plus the manifest's algorithm) of bytes in order."""

    def __init__(self, algorithms: set[str]) -> None:
        self.hashers = {name: hashlib.new(name) for name in {"sha256", *algorithms}}

    def update(self, data: Chunk) -> None:
        for hasher in self.hashers.values():
            hasher.update(data)

    def update_all(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            self.update(chunk)

    def hexdigest(self, algorithm: str) -> str | None:
        hasher = self.hashers.get(algorithm)
        return hasher.hexdigest() if hasher is not None else None


def no_space_error(exc: OSError, artifact: str) -> BaseException:
    """ENOSPC (and friends) as :class:`InsufficientSpaceError`; other errors as they are."""
    if is_out_of_space(exc):
        return InsufficientSpaceError(
            "the disk filled up while writing; the partial file is kept for a resume",
            artifact=artifact,
        )
    return exc


def write_at(fd: int, chunks: Sequence[Chunk], offset: int, artifact: str) -> None:
    """Write ``chunks`` contiguously at ``offset`` (all of them, or raise)."""
    total = sum(len(c) for c in chunks)
    try:
        done = os.pwritev(fd, chunks, offset) if len(chunks) > 1 else 0
        if done < total:  # a short vectored write (rare), or a single chunk
            rest = memoryview(b"".join(chunks) if len(chunks) > 1 else chunks[0])[done:]
            while done < total:
                written = os.pwrite(fd, rest, offset + done)
                rest = rest[written:]
                done += written
    except OSError as exc:
        raise no_space_error(exc, artifact) from None


class DirectWrites:
    """Writes that bypass the page cache (``O_DIRECT``), for the buffers the fast receive
    path fills: page-aligned memory, at offsets and lengths that are multiples of a page.
    Receiving, hashing and writing a GiB then costs one copy fewer, and the cache is left
    to the rest of the machine. Anything else (a first or last piece, a file system that
    refuses it) is written through the ordinary descriptor. Used from worker threads."""

    ALIGN = mmap.PAGESIZE

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def write(self, chunks: Sequence[Chunk], offset: int, *, aligned: bool) -> bool:
        """Write ``chunks`` at ``offset`` directly if they allow it; False if they must go
        through the ordinary descriptor (nothing was written then)."""
        fd = self.fd
        if fd is None or not aligned or len(chunks) != 1 or offset % self.ALIGN:
            return False
        view = memoryview(chunks[0])
        if len(view) % self.ALIGN:
            return False
        try:
            while view:
                done = os.pwrite(fd, view, offset)
                view, offset = view[done:], offset + done
        except OSError as exc:
            if exc.errno != errno.EINVAL or len(view) != len(chunks[0]):
                raise
            self.fd = None  # the file system took the descriptor, not the writes
            return False
        return True

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def hash_range(fd: int, start: int, end: int, hashes: Hashes) -> None:
    """Feed bytes ``start..end`` of an open file to ``hashes`` (through one reused
    buffer: memory stays flat however much is read back)."""
    buffer = memoryview(bytearray(min(_READ_BLOCK, max(end - start, 1))))
    position = start
    while position < end:
        view = buffer[: min(len(buffer), end - position)]
        got = os.preadv(fd, [view], position)
        if not got:
            raise OSError("the file is shorter than expected")
        hashes.update(view[:got])
        position += got


def when_done(futures: Sequence[asyncio.Future[Any]], released: Callable[[], None]) -> None:
    """Call ``released`` once every job in ``futures`` is over, unless one was cancelled
    (its thread may still be using the buffers: they are then never reused)."""
    left = [len(futures)]

    def one_done(future: asyncio.Future[Any]) -> None:
        left[0] -= 1
        if left[0] == 0 and not any(f.cancelled() for f in futures):
            released()

    for future in futures:
        future.add_done_callback(one_done)


async def after_threads(futures: Sequence[asyncio.Future[Any]], finish: Callable[[], None]) -> None:
    """Run ``finish`` (which closes a descriptor) once every worker-thread job in
    ``futures`` is over, whatever their fate. A thread cannot be cancelled: if the caller
    is cancelled while waiting, ``finish`` still runs, later, when the threads are done,
    never under them. The jobs' errors are retrieved here: whoever awaited a job saw its
    error; the others are consequences of it."""

    def retrieve_and_finish(_: object = None) -> None:
        for future in futures:
            if not future.cancelled():
                future.exception()
        finish()

    if not futures:
        finish()
        return
    waiting = asyncio.ensure_future(asyncio.wait(futures))
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        waiting.add_done_callback(retrieve_and_finish)
        raise
    retrieve_and_finish()


class WriteBehind:
    """Starts the writeback of the finished part of a large file while the download goes
    on, and drops it from the page cache (``POSIX_FADV_DONTNEED``). The fsync before the
    final rename then has little left to flush, and a 50 GB dump does not push the rest of
    the machine's working set out of memory. Called in order, from one worker thread."""

    STEP = 32 * 1024 * 1024

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.done = 0

    def advance(self, upto: int) -> None:
        if upto - self.done < self.STEP:
            return
        with contextlib.suppress(OSError, AttributeError):  # advice only; not everywhere
            os.posix_fadvise(self.fd, self.done, upto - self.done, os.POSIX_FADV_DONTNEED)
        self.done = upto


class StreamWriter:
    """Appends buffers to an open file at increasing offsets, hashing them in order.

    ``confirmed`` is the end of the prefix that is both written and hashed. When anything
    fails, :meth:`close` cuts the file back to it, so file and hash never disagree (and
    ``hashes_valid`` says whether the hash itself can still be trusted to continue). The
    writer owns ``fd`` and closes it.
    """

    def __init__(
        self,
        fd: int,
        hashes: Hashes,
        offset: int,
        artifact: str,
        *,
        max_inflight: int = 4,
        on_confirmed: Callable[[int], None] | None = None,
        direct: int | None = None,
    ) -> None:
        self.artifact = artifact
        self.fd = fd
        self.direct = DirectWrites(direct)
        self.hashes = hashes
        self.confirmed = offset
        self.hashes_valid = True
        self._next = offset
        self.max_inflight = max(1, max_inflight)
        self._on_confirmed = on_confirmed
        self._failed = False
        # One thread per lane keeps each lane in order: writes land in sequence, and the
        # hash sees the bytes in sequence.
        self._write_lane = concurrent.futures.ThreadPoolExecutor(1, "oec-write")
        self._behind = WriteBehind(self.fd)
        self._hash_lane = concurrent.futures.ThreadPoolExecutor(1, "oec-hash")
        self._inflight: collections.deque[
            tuple[int, asyncio.Future[None], asyncio.Future[None]]
        ] = collections.deque()

    def truncate(self) -> None:
        os.ftruncate(self.fd, 0)

    def _write_job(self, chunks: list[Chunk], offset: int, aligned: bool) -> None:
        if self._failed:  # never write after a gap
            raise OSError("an earlier write failed")
        try:
            if not self.direct.write(chunks, offset, aligned=aligned):
                write_at(self.fd, chunks, offset, self.artifact)
        except OSError as exc:
            self._failed = True
            raise no_space_error(exc, self.artifact) from None
        except BaseException:
            self._failed = True
            raise
        # Hashing reads the chunks from memory, never from the page cache.
        self._behind.advance(offset + sum(len(c) for c in chunks))

    async def write(
        self,
        chunks: list[Chunk],
        *,
        released: Callable[[], None] | None = None,
        aligned: bool = False,
    ) -> None:
        """Queue ``chunks`` (received in order) for writing and hashing; ``released`` is
        called once both threads are done with them (never while one still reads them).
        ``aligned``: the one chunk starts on a page boundary in memory (a buffer of the
        fast path), so it may be written directly."""
        while len(self._inflight) >= self.max_inflight:
            await self._retire_oldest()
        size = sum(len(c) for c in chunks)
        loop = asyncio.get_running_loop()
        written = loop.run_in_executor(
            self._write_lane, self._write_job, chunks, self._next, aligned
        )
        hashed = loop.run_in_executor(self._hash_lane, self.hashes.update_all, chunks)
        self._next += size
        self._inflight.append((self._next, written, hashed))
        # Progress is reported as soon as bytes are on disk, not when the next buffer comes
        # (which, on a stalled connection, may be never).
        written.add_done_callback(self._advance)
        hashed.add_done_callback(self._advance)
        if released is not None:
            when_done([written, hashed], released)

    def _advance(self, _: object = None) -> None:
        """Move ``confirmed`` over every leading buffer that is written and hashed."""
        moved = False
        while self._inflight:
            end, written, hashed = self._inflight[0]
            if not (written.done() and hashed.done()):
                break
            if written.cancelled() or hashed.cancelled():
                break
            if written.exception() is not None or hashed.exception() is not None:
                break
            self._inflight.popleft()
            self.confirmed = end
            moved = True
        if moved and self._on_confirmed is not None:
            self._on_confirmed(self.confirmed)

    async def _retire_oldest(self) -> None:
        _, written, hashed = self._inflight[0]
        # Shielded: a cancelled caller cannot stop a thread; close() still waits for it.
        await asyncio.shield(written)
        await asyncio.shield(hashed)
        self._advance()

    async def drain(self) -> None:
        """Return once every queued job is over and its buffers were released."""
        while self._inflight:
            await self._retire_oldest()
        # A job that ended while we waited for an older one may have been taken off the
        # queue before its own done callbacks (the buffers' release) ran: they are
        # already scheduled, so one turn of the loop runs them.
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Wait for every job (whatever its fate), cut the file back to ``confirmed``,
        close. Never raises for a job's failure: the caller already saw it, or will."""
        futures: list[asyncio.Future[Any]] = [
            f for _, written, hashed in self._inflight for f in (written, hashed)
        ]
        await after_threads(futures, self._finish)

    def _finish(self) -> None:
        try:
            while self._inflight:
                end, written, hashed = self._inflight.popleft()
                if written.exception() is None and hashed.exception() is None:
                    self.confirmed = end
                    continue
                # A gap: the hash lane may have run past what reached the disk.
                self.hashes_valid = False
                self._inflight.clear()
            if os.fstat(self.fd).st_size != self.confirmed:
                os.ftruncate(self.fd, self.confirmed)
        finally:
            self.direct.close()
            os.close(self.fd)
            self._write_lane.shutdown(wait=False)
            self._hash_lane.shutdown(wait=False)
