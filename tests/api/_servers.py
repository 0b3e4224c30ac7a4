"""One-off API servers on real loopback sockets, for behaviours the simulator has no
switch for (redirect chains, dripped headers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/api/public/v1"


@asynccontextmanager
async def tiny_api(handler: Handler) -> AsyncIterator[str]:
    """A one-handler API (every method, every path under the prefix) on a loopback
    socket; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", PREFIX + "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def dripping_api(*, line_every: float, body: bytes | None = None) -> AsyncIterator[str]:
    """An API that answers ``200 OK`` and then sends one header line every ``line_every``
    seconds, forever (``body=None``), or, given a ``body``, all headers at once and the
    body one byte every ``line_every`` seconds. A raw socket server: aiohttp's own
    server cannot be made to drip headers."""

    stop = asyncio.Event()
    handlers: set[asyncio.Task[None]] = set()

    async def pause() -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), line_every)
        if stop.is_set():
            raise ConnectionResetError  # the test is over: hang up

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            number = 0
            while body is None:
                number += 1
                writer.write(f"X-Drip-{number}: x\r\n".encode())
                await writer.drain()
                await pause()
            writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode())
            for offset in range(len(body)):
                writer.write(body[offset : offset + 1])
                await writer.drain()
                await pause()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        stop.set()
        server.close()
        await asyncio.gather(*handlers)  # every connection hung up: wait_closed returns
        await server.wait_closed()
