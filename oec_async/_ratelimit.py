"""Client-side pacing under the platform's per-key budgets (API.md section 1).

The platform counts each key's requests per calendar minute, reads (about 120) and writes
(about 20) separately, and answers a request over budget with 429 (ten refused keys from
one address block it for 15 minutes). The client keeps one :class:`RateLimiter` per
budget: a sliding window of the last ``limit`` start times, which guarantees that no
interval of ``period`` seconds, hence no calendar minute, sees more than ``limit``
requests from this client, however many tasks share it. Every request on the wire takes
a slot, redirect hops included.

What the server says adjusts the budgets: a 429 pauses every caller of its budget (for
the wait the server asked for, or, when it says nothing, until just past the next
calendar minute: :func:`wait_past_next_window`), and ``X-RateLimit-Limit`` tells the
key's real limit (:meth:`RateLimiter.learn_limit`).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import Literal

from oec_async._loops import LoopBoundLock

__all__ = ["Budget", "Pacer", "RateLimiter", "wait_past_next_window", "within_limit"]

#: Which of the key's budgets a request counts against.
Budget = Literal["read", "write"]


def within_limit(server_limit: int) -> int:
    """The pace to keep under a server limit: a sixth below it, as the default 100 reads
    a minute is under 120 (room for clock skew and for other users of the key)."""
    return max(1, server_limit - math.ceil(server_limit / 6))


def wait_past_next_window(period: float, now: float | None = None) -> float:
    """Seconds from ``now`` (wall clock, the server's calendar) until a sixtieth of
    ``period`` past the start of the next window: one second past the next full minute.

    What a 429 without any header asks for: the key's calendar-minute bucket is full, and
    a new one starts at the next minute (the sixtieth absorbs a second of clock skew).
    """
    now = time.time() if now is None else now
    return (math.floor(now / period) + 1) * period + period / 60 - now


class RateLimiter:
    """One budget: at most ``limit`` request starts in any ``period`` seconds.

    The window outlives event loops (the server's count does); the lock that queues
    waiting callers belongs to the running loop and is remade in the next one.
    """

    def __init__(self, limit: int, period: float = 60.0, *, share: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.configured = limit
        #: This client's share of the key's budget (1/N when N processes share the key).
        self.share = share
        self.limit = limit
        self.period = period
        self._starts: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = LoopBoundLock()

    def __repr__(self) -> str:
        return f"RateLimiter(limit={self.limit}, period={self.period:g})"

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock.get():  # FIFO: callers get their turn in arrival order
            while True:
                now = time.monotonic()
                while self._starts and self._starts[0] <= now - self.period:
                    self._starts.popleft()
                wait = self._paused_until - now
                if len(self._starts) >= self.limit:
                    wait = max(wait, self._starts[-self.limit] + self.period - now)
                if wait <= 0:
                    self._starts.append(now)
                    return
                await asyncio.sleep(wait)

    def paused_for(self) -> float:
        """Seconds left before callers may go on after a :meth:`pause` (0 if none)."""
        return max(0.0, self._paused_until - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds``: the server said so (429 or a zero budget)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def learn_limit(self, server_limit: int) -> None:
        """The server told the key's real limit (``X-RateLimit-Limit``): pace a sixth
        below this client's share of it when that is under the configured budget, never
        above the configured one (an older API counting an ``rw`` key's reads against its
        20 writes says 20; N shards sharing the key each take a Nth of what it says)."""
        if server_limit >= 1:
            shared = max(1, math.floor(within_limit(server_limit) * self.share))
            self.limit = min(self.configured, shared)


class Pacer:
    """The client's two budgets, reads and writes; ``None`` turns one's pacing off."""

    def __init__(
        self, reads: int | None, writes: int | None, period: float = 60.0, *, share: float = 1.0
    ) -> None:
        self.period = period
        self.reads = RateLimiter(reads, period, share=share) if reads is not None else None
        self.writes = RateLimiter(writes, period, share=share) if writes is not None else None

    def __repr__(self) -> str:
        return f"Pacer(reads={self.reads!r}, writes={self.writes!r})"

    def budget(self, kind: Budget) -> RateLimiter | None:
        """The limiter of ``kind``, or None when that budget is not paced."""
        return self.reads if kind == "read" else self.writes

    async def acquire(self, kind: Budget) -> None:
        """Take a slot of ``kind`` (at once when that budget is not paced)."""
        limiter = self.budget(kind)
        if limiter is not None:
            await limiter.acquire()

    def pause(self, kind: Budget, seconds: float) -> None:
        """Hold every caller of ``kind`` for ``seconds``."""
        limiter = self.budget(kind)
        if limiter is not None:
            limiter.pause(seconds)

    def learn_limit(self, kind: Budget, server_limit: int) -> None:
        """Adjust ``kind``'s pace to the key's real limit."""
        limiter = self.budget(kind)
        if limiter is not None:
            limiter.learn_limit(server_limit)

    def share_interval(self, share: float) -> float:
        """The least seconds between two reads that use at most ``share`` of the read
        budget (``share=0.2``: a fifth): a poller's pace. 0 when reads are not paced."""
        if self.reads is None:
            return 0.0
        return self.period / (self.reads.limit * share)
