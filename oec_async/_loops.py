"""What belongs to one event loop: aiohttp sessions and asyncio locks, remade in the next.

One client may serve several loops in turn (a script calling ``asyncio.run()`` twice).

An aiohttp session belongs to the loop it was made in, and so do its pooled connections:
used from another loop (a second ``asyncio.run()``) it fails with ``Event loop is closed``
on every call. A :class:`LoopBoundSession` makes one session per loop, lazily inside it
(aiohttp requires a running loop), and closes it when that loop shuts down:
``asyncio.run()`` cancels every task still pending at its end, and a small guard task per
session closes it then, on its own loop, where closing works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from oec_async.errors import ConfigurationError

__all__ = ["LoopBoundLock", "LoopBoundSession", "check_borrowed_session"]


class LoopBoundLock:
    """An ``asyncio.Lock`` for the running loop (a lock waited on in one loop cannot be
    used in another); remade when the loop changes, which only happens between runs."""

    def __init__(self) -> None:
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def get(self) -> asyncio.Lock:
        """The running loop's lock."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]


async def _close_at_loop_end(session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.get_running_loop().create_future()  # until cancelled
    finally:
        if not session.closed:
            await session.close()


class LoopBoundSession:
    """The session of whichever loop is running, made by ``factory`` on first use in it."""

    def __init__(self, factory: Callable[[], aiohttp.ClientSession]) -> None:
        self._factory = factory
        self._made: dict[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, asyncio.Task[None]]
        ] = {}

    async def get(self) -> aiohttp.ClientSession:
        """This loop's session, made now if it has none (or its one was closed)."""
        loop = asyncio.get_running_loop()
        for other in [other for other in self._made if other.is_closed()]:
            del self._made[other]  # its guard closed the session as that loop ended
        made = self._made.get(loop)
        if made is not None and not made[0].closed:
            return made[0]
        session = self._factory()
        guard = loop.create_task(_close_at_loop_end(session), name="oec_async session guard")
        self._made[loop] = (session, guard)
        return session

    async def close(self) -> None:
        """Close this loop's session now; a session of a loop still running elsewhere is
        closed there, at that loop's end."""
        loop = asyncio.get_running_loop()
        made, self._made = self._made, {}
        for owner, (session, guard) in made.items():
            if owner is loop:
                guard.cancel()
                await session.close()
            elif not owner.is_closed():
                owner.call_soon_threadsafe(guard.cancel)


def check_borrowed_session(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """A caller's session, usable here: open, and made in the running loop.

    Raises:
        ConfigurationError: the session is closed, or belongs to another event loop (it
            stays the caller's: the client never remakes or closes it).
    """
    if session.closed:
        raise ConfigurationError("the aiohttp session passed to OECClient is closed")
    # aiohttp keeps the loop on a private attribute (its public property is deprecated).
    if getattr(session, "_loop", None) is not asyncio.get_running_loop():
        raise ConfigurationError(
            "the aiohttp session passed to OECClient belongs to another event loop: pass "
            "one made in this loop, or none (the client then makes its own per loop)"
        )
    return session
