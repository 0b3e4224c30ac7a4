"""Client-side pacing under the platform's per-key request budget.

The platform allows about 120 requests per minute per key, counted in calendar-minute
buckets, and answers a burst above it with 429 (or, when it keeps going, an ``ip_blocked``
lasting 15 minutes). A sliding window of the last ``limit`` start times guarantees that no
60-second interval, hence no calendar minute, sees more than ``limit`` requests from this
client, however many tasks share it. A 429's ``Retry-After`` pauses every caller, not
only the one that got it.
"""

from __future__ import annotations

import asyncio
import collections
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.period = period
        self._starts: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        # The window outlives event loops (the server's count does); the lock that orders
        # waiting callers belongs to one loop, and is remade in the next.
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._loop_lock():  # FIFO: callers get their turn in arrival order
            while True:
                now = time.monotonic()
                while self._starts and self._starts[0] <= now - self.period:
                    self._starts.popleft()
                wait = self._paused_until - now
                if len(self._starts) >= self.limit:
                    wait = max(wait, self._starts[0] + self.period - now)
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
