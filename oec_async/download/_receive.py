"""Step 3, receiving: a response body into buffers for the writer threads.

The event loop only receives; the buffers go to worker threads that write and hash them
(:mod:`._writer`). A large body framed by its length is received straight into a pool of
preallocated buffers (:mod:`._takeover`); any other body is read through aiohttp's stream
reader, its chunks gathered by :class:`Batcher` (the one way chunks are gathered, for a
whole-file stream and for each range of a segmented file alike). :class:`Meter` counts
what arrives and reports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from oec_async.download._signals import Mismatch, Restart, Transient
from oec_async.download._takeover import BufferPool, TakenBody, takeover_length
from oec_async.download._writer import Chunk, StreamWriter

__all__ = ["Batcher", "Meter", "stream_body"]


class Meter:
    """Bytes received over the network, and a callback each time bytes reach the disk."""

    def __init__(self, on_disk: Callable[[int], None]) -> None:
        self.received = 0
        self._on_disk = on_disk

    def got(self, amount: int) -> None:
        """``amount`` bytes arrived from the network."""
        self.received += amount

    def stored(self, offset: int) -> None:
        """The file's verified-so-far prefix now ends at ``offset`` (or, for a segmented
        file, this many bytes are on disk)."""
        self._on_disk(offset)


class Batcher:
    """Received chunks, handed on in batches of at least ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._chunks: list[Chunk] = []
        self._gathered = 0

    def add(self, chunk: Chunk) -> list[Chunk] | None:
        """Keep ``chunk``; a full batch when one is ready, else None."""
        self._chunks.append(chunk)
        self._gathered += len(chunk)
        return self.take() if self._gathered >= self.size else None

    def take(self) -> list[Chunk]:
        """Whatever is gathered (possibly nothing), handed on now."""
        chunks, self._chunks, self._gathered = self._chunks, [], 0
        return chunks


async def stream_body(
    resp: aiohttp.ClientResponse,
    writer: StreamWriter,
    *,
    buffer_size: int,
    limit: int | None,
    known_total: bool,
    meter: Meter,
    idle_timeout: float,
) -> None:
    """Write a body to ``writer`` until it ends; bytes received before a failure are
    written too (a resume starts where they stop).

    ``limit`` is the byte offset the body may not go past (the object's size, or the
    largest file accepted when the size is unknown). A large body framed by its length
    takes the fast path (:mod:`._takeover`); any other, aiohttp's.
    """
    length = takeover_length(resp, buffer_size)
    start = writer.confirmed
    if length is not None and (limit is None or start + length <= limit):
        pool = BufferPool(writer.max_inflight + 1, buffer_size)
        body = TakenBody(
            resp,
            start=start,
            end=lambda: start + length,
            pool=pool,
            idle_timeout=idle_timeout,
            on_received=meter.got,
            artifact=writer.artifact,
        )
        try:
            await body.hand_over(writer.write)
            await writer.drain()
        finally:
            body.close()
        return
    await _stream_chunks(resp, writer, buffer_size, limit, known_total, meter)


async def _stream_chunks(
    resp: aiohttp.ClientResponse,
    writer: StreamWriter,
    buffer_size: int,
    limit: int | None,
    known_total: bool,
    meter: Meter,
) -> None:
    """aiohttp's path: the body's chunks as its stream reader hands them out."""
    batcher = Batcher(buffer_size)
    received = writer.confirmed
    try:
        async for chunk in resp.content.iter_any():
            meter.got(len(chunk))
            received += len(chunk)
            if limit is not None and received > limit:
                if not known_total:
                    raise Mismatch(f"larger than the {limit} bytes accepted for this file")
                raise Restart("storage sent more bytes than the object holds")
            if (batch := batcher.add(chunk)) is not None:
                await writer.write(batch)
        if batch := batcher.take():
            await writer.write(batch)
        await writer.drain()
    except (aiohttp.ClientError, TimeoutError, asyncio.CancelledError):
        # The connection failed (or we are cancelled), but every byte already received
        # is good: keep it.
        if batch := batcher.take():
            await asyncio.shield(writer.write(batch))
        raise


def short_body(offset: int, total: int) -> Transient:
    """The body ended before the object did: resume from ``offset``."""
    return Transient(f"body ended at byte {offset} of {total}")
