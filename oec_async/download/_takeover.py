"""Step 3's fast path: after the response headers, the body's bytes land straight in
preallocated buffers.

aiohttp sends the request and receives the headers, and the judge decides on them as for
every response. For a large body framed by ``Content-Length``, the connection's transport
is then switched to a :class:`asyncio.BufferedProtocol` of ours
(``transport.set_protocol``): the kernel (or, over TLS, the decryption) writes into a
buffer from a fixed :class:`BufferPool`, with no copy made by the event loop and no Python
object per chunk. Each full buffer goes to the worker threads (write, hash) and returns to
the pool when they are done with it; with every buffer in flight, reading pauses, so
memory stays flat (``buffers x buffer_size`` per connection) and a slow disk is never
taken for a stalled server.

The buffers are slices of a ``memoryview``, never of a ``bytearray``: asyncio's TLS
transport reads into ``buf[offset:]``, which for a ``bytearray`` is a copy, and the bytes
are lost (CPython #156275).

A connection taken over is never given back to the pool: its body is read to the end (or
the receiver hangs up early, when a segment shrinks), then the connection is closed. So
the fast path is for bodies large enough that a connection's setup does not count
(:func:`takeover_length`); a small body, a chunked one, or one aiohttp already holds
whole keeps aiohttp's own path and its kept-alive connection.

Failures look exactly as on aiohttp's path: no byte for ``idle_timeout`` seconds is a
:class:`TimeoutError` (a stall), a connection closed or reset before the body's end is an
:class:`aiohttp.ClientPayloadError`; every byte received before either is handed out
first.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import mmap
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp

from oec_async.download._writer import Chunk

__all__ = ["BufferPool", "Submit", "TakenBody", "takeover_length"]

logger = logging.getLogger("oec_async.download")

#: A body takes the fast path when it is at least this many buffers long.
MIN_BUFFERS = 4


class Submit(Protocol):
    """A writer's way in: ``chunks`` next in the file, ``released`` called once no thread
    uses them, ``aligned`` when the one chunk starts a pool buffer."""

    def __call__(
        self,
        chunks: list[Chunk],
        *,
        released: Callable[[], None] | None = None,
        aligned: bool = False,
    ) -> Awaitable[None]: ...


class BufferPool:
    """``count`` buffers of ``size`` bytes, page-aligned (anonymous memory maps), lent out
    and given back. Only whole buffers are lent, and a chunk handed out is always the
    front of one (``buffer[:n]``), so it starts on a page boundary."""

    def __init__(self, count: int, size: int) -> None:
        self.size = size
        self._maps = [mmap.mmap(-1, size) for _ in range(count)]
        self._free = [memoryview(m) for m in self._maps]
        self._lent: set[int] = set()

    @property
    def empty(self) -> bool:
        return not self._free

    def take(self) -> memoryview:
        view = self._free.pop()
        self._lent.add(id(view.obj))
        return view

    def give(self, chunk: Chunk) -> bool:
        """Take back the buffer ``chunk`` is a slice of; False if it is none of ours (or
        already back)."""
        if not isinstance(chunk, memoryview) or id(chunk.obj) not in self._lent:
            return False
        self._lent.discard(id(chunk.obj))
        self._free.append(memoryview(chunk.obj))
        return True


def takeover_length(resp: aiohttp.ClientResponse, buffer_size: int) -> int | None:
    """The body's length if it may take the fast path, else None (aiohttp's own path)."""
    headers = resp.headers
    if "Transfer-Encoding" in headers:
        return None
    value = headers.get("Content-Length", "").strip()
    if not value.isdigit():
        return None
    length = int(value)
    connection = resp.connection
    transport = connection.transport if connection is not None else None
    if transport is None or transport.is_closing() or resp.content.is_eof():
        return None
    if resp.content.exception() is not None:
        return None
    return length if length >= MIN_BUFFERS * buffer_size else None


class _Receiver(asyncio.BufferedProtocol):
    """The transport's protocol while the body is ours: forwards to :class:`TakenBody`."""

    def __init__(self, body: TakenBody) -> None:
        self.body = body

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.body._buffer_to_fill()

    def buffer_updated(self, nbytes: int) -> None:
        self.body._filled(nbytes)

    def eof_received(self) -> bool | None:
        self.body._ended(None)
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.body._lost(exc)


class TakenBody:
    """The rest of one response body, received by our own protocol: an async iterator of
    filled buffers (and, first, whatever aiohttp had already received).

    Give every buffer back with :meth:`release` once the worker threads are done with
    it, and :meth:`close` at the end (the connection is then closed, never reused).

    Args:
        resp: a response whose headers were judged; see :func:`takeover_length`.
        start: the file offset of the body's first byte.
        end: the offset to stop at (read again at every receive: a segment's end shrinks
            when another worker takes the back half). Never past the body's own end.
        pool: the buffers to receive into.
        idle_timeout: seconds without a byte that make a stall.
        on_received: told each time bytes arrive (before they reach the worker threads).
        artifact: named in the log.
    """

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        *,
        start: int,
        end: Callable[[], int],
        pool: BufferPool,
        idle_timeout: float,
        on_received: Callable[[int], None] | None = None,
        artifact: str = "",
    ) -> None:
        connection = resp.connection
        if connection is None or connection.transport is None:
            raise ValueError("the response has no connection to take over")
        self._resp = resp
        self._transport: asyncio.Transport = connection.transport
        self._original = self._transport.get_protocol()
        self._loop = asyncio.get_running_loop()
        self._end = end
        self._pool = pool
        self._idle_timeout = idle_timeout
        self._on_received = on_received
        self.position = start  # the offset of the next byte to receive
        self._current: memoryview | None = None
        self._fill = 0
        self._cap = 0
        self._ready: collections.deque[Chunk] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._error: BaseException | None = None
        self._held = False  # reading paused: every buffer is in flight
        self._last_data = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        # What aiohttp received with the headers is handed out first, as it is.
        prefix = resp.content.read_nowait(-1)
        if prefix:
            prefix = prefix[: max(0, end() - start)]
            self._ready.append(prefix)
            self._received(len(prefix))
        if self.position >= end():
            self._finished = True
            return
        logger.debug(
            "%s: bytes %d-%d straight into our buffers%s",
            artifact,
            start,
            end() - 1,
            " (TLS)" if self._transport.get_extra_info("ssl_object") is not None else "",
        )
        self._transport.set_protocol(_Receiver(self))
        if not self._transport.is_reading():
            self._transport.resume_reading()
        self._arm(idle_timeout)

    # -- the consumer's side -------------------------------------------------------------

    def __aiter__(self) -> TakenBody:
        return self

    async def __anext__(self) -> Chunk:
        while not self._ready:
            if self._finished:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._ready.popleft()

    @staticmethod
    def aligned(chunk: Chunk) -> bool:
        """``chunk`` starts a buffer of the pool (page-aligned memory), not the bytes
        aiohttp had received before the takeover."""
        return isinstance(chunk, memoryview)

    async def hand_over(self, submit: Submit) -> None:
        """Give every buffer to ``submit`` (a writer's), in order, each to come back
        through :meth:`release`. Cancelled, or when the body fails, whatever arrived and
        was not given yet is given too: every byte received is good (a resume starts
        where they stop)."""
        in_hand: Chunk | None = None
        try:
            async for chunk in self:
                in_hand = chunk
                await submit(
                    [chunk],
                    released=functools.partial(self.release, chunk),
                    aligned=self.aligned(chunk),
                )
                in_hand = None
        except BaseException as exc:
            # A writer that failed keeps nothing more (``in_hand`` is what it refused).
            if in_hand is None or isinstance(exc, asyncio.CancelledError):
                rest = ([in_hand] if in_hand is not None else []) + self.rest()
                if rest:
                    await asyncio.shield(submit(rest))
            raise

    def release(self, chunk: Chunk) -> None:
        """The worker threads are done with ``chunk``: its buffer may be filled again."""
        if self._pool.give(chunk) and self._held and not self._finished:
            self._held = False
            self._last_data = self._loop.time()  # a slow disk is not a stalled server
            self._transport.resume_reading()

    def rest(self) -> list[Chunk]:
        """Stop receiving; the buffers received and not yet handed out, in order (for a
        caller that is cancelled and keeps what arrived)."""
        self._stop(None)
        chunks = list(self._ready)
        self._ready.clear()
        return chunks

    def close(self) -> None:
        """Stop receiving and close the connection (a body taken over is never reused)."""
        self._stop(None)
        transport = self._transport
        if transport.get_protocol() is not self._original and not transport.is_closing():
            # aiohttp's protocol gets the transport back, so that it sees the close.
            transport.set_protocol(self._original)
        self._resp.close()

    # -- the protocol's side -------------------------------------------------------------

    def _buffer_to_fill(self) -> memoryview:
        if self._current is None:
            self._current = self._pool.take()
            self._fill = 0
            # Every buffer ends at a multiple of the buffer size in the file, so that all
            # but the first and the last are aligned for direct writes.
            self._cap = len(self._current) - self.position % len(self._current)
        room = min(self._cap - self._fill, self._end() - self.position)
        return self._current[self._fill : self._fill + room]

    def _filled(self, nbytes: int) -> None:
        self._fill += nbytes
        self._received(nbytes)
        self._last_data = self._loop.time()
        assert self._current is not None  # noqa: S101 - get_buffer gave it
        done = self.position >= self._end()
        if done or self._fill >= self._cap:
            self._hand_out()
        if done:
            self._stop(None)
        elif self._current is None and self._pool.empty:
            self._held = True
            self._transport.pause_reading()

    def _received(self, nbytes: int) -> None:
        self.position += nbytes
        if self._on_received is not None:
            self._on_received(nbytes)

    def _hand_out(self) -> None:
        if self._current is not None:
            if self._fill:
                self._ready.append(self._current[: self._fill])
            else:
                self._pool.give(self._current)
            self._current = None
        self._wake()

    def _ended(self, exc: BaseException | None) -> None:
        if not self._finished:
            reason = f" ({type(exc).__name__}: {exc})" if exc else ""
            self._stop(
                aiohttp.ClientPayloadError(
                    f"the connection closed at byte {self.position}, before the end of "
                    f"the body at byte {self._end()}{reason}"
                )
            )

    def _lost(self, exc: Exception | None) -> None:
        self._ended(exc)
        # aiohttp's protocol learns that its connection is gone, as if it had been reading.
        self._original.connection_lost(exc)

    def _stop(self, error: BaseException | None) -> None:
        """No more bytes: hand out what arrived, then end (with ``error`` if one)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._finished:
            return
        self._finished = True
        self._error = error
        self._hand_out()
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- stall detection -----------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        self._watchdog = self._loop.call_later(delay, self._check_stall)

    def _check_stall(self) -> None:
        self._watchdog = None
        if self._finished:
            return
        idle = self._loop.time() - self._last_data
        if self._held or idle < self._idle_timeout:
            # Held back by our own disk, or bytes came since: look again later.
            self._arm(self._idle_timeout - (0 if self._held else idle))
            return
        self._stop(TimeoutError(f"no byte for {self._idle_timeout:g} s"))
