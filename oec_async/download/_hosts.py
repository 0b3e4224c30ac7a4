"""Storage connections per host, and the connections a segmented file has of its own.

Every request a transfer makes holds one of its host's slots while it is answered
(``max_connections_per_host`` of the client): pulling many files from one host stays
polite. The extra connections of a file fetched in segments are the file's own budget
(``segments``) and hold no slot: ``segments=16`` means 16 connections, as with ``aria2c
-x16``. Above both, the storage connector's global bound (``max_connections``) holds for
every request, so a bulk pull never opens more than that.

Slots belong to one session (the client makes one per event loop), so they are never
shared across loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp

__all__ = ["host_slot"]

_slots: weakref.WeakKeyDictionary[aiohttp.ClientSession, dict[tuple[str, str], asyncio.Semaphore]]
_slots = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def host_slot(
    session: aiohttp.ClientSession, url: str, per_host: int | None
) -> AsyncIterator[None]:
    """Hold one of ``url``'s host's ``per_host`` slots (None: no bound of ours)."""
    if per_host is None:
        yield
        return
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc.lower())
    hosts = _slots.setdefault(session, {})
    slot = hosts.get(key)
    if slot is None:
        slot = hosts[key] = asyncio.Semaphore(per_host)
    async with slot:
        yield
