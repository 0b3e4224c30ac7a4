"""What the simulator saw: every request on the wire, bytes served, connections open."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import attrs
from aiohttp import web

__all__ = ["RequestLog", "RequestRecord"]


@attrs.define
class RequestRecord:
    """One request as the simulator saw it (headers included, to check what was sent).

    ``key_id`` is the name of the API key that sent it (``"default-rw"``,
    ``"default-ro"``, or the name given to ``sim.add_key``), never the key itself; None
    for storage requests and for keys the simulator does not know. ``window`` is the
    rate-limit window it arrived in (``floor(wall / rate_window)``: the calendar minute by
    default), ``budget`` the one it counted against (``"read"``/``"write"``; None if it
    counted against none). ``status`` 0 means no answer was sent (the connection was
    dropped).
    """

    server: str  # "api", "storage" or "storage-alt"
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    range: str | None = None
    backup_id: uuid.UUID | None = None
    artifact: str | None = None
    bytes_sent: int = 0
    at: float = attrs.Factory(time.monotonic)
    wall: float = attrs.Factory(time.time)
    window: int = 0
    remote: str | None = None
    key_id: str | None = None
    budget: str | None = None


class RequestLog:
    """The request log, byte counters and in-flight gauge (written by the handlers)."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self.storage_in_flight = 0
        self.storage_peak_in_flight = 0
        self.expired_refusals = 0
        self.rate_limited = 0
        self._in_flight: set[int] = set()
        self._bytes_served: dict[tuple[uuid.UUID, str], int] = {}
        self._byte_waiters: list[tuple[tuple[uuid.UUID, str], int, asyncio.Future[None]]] = []

    def record(
        self, server: str, request: web.Request, *, window_seconds: float = 60.0
    ) -> RequestRecord:
        """Log a request as it arrives."""
        entry = RequestRecord(
            server=server,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            remote=request.remote,
        )
        entry.window = math.floor(entry.wall / window_seconds)
        self.records.append(entry)
        return entry

    def count_answer(self, status: int) -> None:
        """Count an API answer (429s, for ``rate_limited``)."""
        if status == 429:
            self.rate_limited += 1

    def begin_in_flight(self, connection: object) -> None:
        """A storage response started on ``connection``."""
        self._in_flight.add(id(connection))
        self.storage_in_flight = len(self._in_flight)
        self.storage_peak_in_flight = max(self.storage_peak_in_flight, self.storage_in_flight)

    def end_in_flight(self, connection: object) -> None:
        """The response on ``connection`` ended (or its client hung up)."""
        self._in_flight.discard(id(connection))
        self.storage_in_flight = len(self._in_flight)

    def count_bytes(self, record: RequestRecord, amount: int) -> None:
        """``amount`` more body bytes of the record's artifact went out."""
        if record.backup_id is None or record.artifact is None:
            return
        key = (record.backup_id, record.artifact)
        served = self._bytes_served[key] = self._bytes_served.get(key, 0) + amount
        for waiter in [w for w in self._byte_waiters if w[0] == key and served >= w[1]]:
            self._byte_waiters.remove(waiter)
            if not waiter[2].done():
                waiter[2].set_result(None)

    def bytes_served(self, backup_id: uuid.UUID, artifact: str) -> int:
        """Body bytes of that artifact sent so far (every request together)."""
        return self._bytes_served.get((backup_id, artifact), 0)

    async def wait_for_bytes(self, backup_id: uuid.UUID, artifact: str, amount: int) -> None:
        """Return once at least ``amount`` bytes of that artifact were sent."""
        if self.bytes_served(backup_id, artifact) >= amount:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._byte_waiters.append(((backup_id, artifact), amount, future))
        await future

    def reset(self) -> None:
        """Forget what was seen (the gauge keeps the connections open now)."""
        self.records.clear()
        self.storage_peak_in_flight = self.storage_in_flight
        self.expired_refusals = 0
        self.rate_limited = 0
        self._bytes_served.clear()
