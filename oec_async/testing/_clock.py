"""The simulated clock that backups taken on demand run by.

It starts at the wall-clock time the simulator was made and moves at ``speed``
simulated seconds per real second (0: frozen), plus whatever a test adds with
:meth:`advance`. Tests drive a backup from ``pending`` to ``completed`` without sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SimClock"]


class SimClock:
    """Simulated seconds since the epoch, as a float."""

    def __init__(self, *, speed: float, start: float | None = None) -> None:
        self._base = time.time() if start is None else start
        self._anchor = time.monotonic()
        self._speed = speed

    def now(self) -> float:
        """The simulated time now (Unix seconds)."""
        return self._base + (time.monotonic() - self._anchor) * self._speed

    def now_datetime(self) -> datetime:
        """The simulated time now, as an aware datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (never back).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"the simulated clock never goes back (advance({seconds}))")
        self._base += seconds

    def set_speed(self, speed: float) -> None:
        """From now on, move at ``speed`` simulated seconds per real second."""
        self._base = self.now()
        self._anchor = time.monotonic()
        self._speed = speed
