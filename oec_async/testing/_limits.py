"""The platform's rate limits (API.md section 1), as the simulator enforces them.

- Each key has a read budget and a write budget per calendar window (the window is
  ``floor(unix_time / rate_window)``: a calendar minute by default), counted separately
  (or, as older API versions did, a read-write key's reads against its write budget).
- Every request that reaches the API with a known key counts, whatever it is answered.
- A 429 carries ``Retry-After`` and ``X-RateLimit-*``, or no header at all (current API
  versions), as the settings say.
- Refused keys (401) from one address within one window block that address for a while:
  every request from it then gets 429 ``ip_blocked``.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from oec_async.testing._settings import SimulatorSettings

__all__ = ["Budget", "RateLimiter", "Refusal", "Usage", "budget_for"]

Budget = Literal["read", "write"]
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def budget_for(method: str, scope: str, settings: SimulatorSettings) -> Budget:
    """Which budget a request counts against."""
    if method.upper() in _WRITES:
        return "write"
    if settings.shared_budget and scope == "rw":
        return "write"  # older versions: an rw key's reads spend its 20 writes
    return "read"


@attrs.frozen
class Usage:
    """One counted request: its budget and where that budget stands now."""

    budget: Budget
    limit: int | None  # None: unlimited
    count: int  # requests in this window, this one included
    reset: float  # when the window ends (Unix seconds)

    @property
    def over(self) -> bool:
        """Whether this request is over the limit."""
        return self.limit is not None and self.count > self.limit

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` for a successful answer (empty when unlimited)."""
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.count)),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }


@attrs.frozen
class Refusal:
    """A request the limiter refuses: the 429 to send."""

    code: str
    message: str
    headers: dict[str, str]
    retry_after: int | None  # for the body; None: say nothing


def _window(settings: SimulatorSettings, now: float) -> int:
    return math.floor(now / settings.rate_window)


class RateLimiter:
    """Counts requests per key and budget, and refused keys per address, per window."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, Budget, int], int] = {}
        self._refused: dict[tuple[str, int], int] = {}
        self._blocked_until: dict[str, float] = {}

    def count(
        self, identity: str, budget: Budget, settings: SimulatorSettings, now: float
    ) -> Usage:
        """Count one request by ``identity`` against ``budget``."""
        window = _window(settings, now)
        key = (identity, budget, window)
        self._counts[key] = self._counts.get(key, 0) + 1
        limit = settings.read_limit if budget == "read" else settings.write_limit
        return Usage(budget, limit, self._counts[key], (window + 1) * settings.rate_window)

    def refusal(self, usage: Usage, settings: SimulatorSettings, now: float) -> Refusal | None:
        """The 429 for a request over its budget, or None."""
        if not usage.over:
            return None
        wait = max(1, math.ceil(usage.reset - now))
        message = f"Rate limit exceeded ({usage.limit} {usage.budget}s per window)"
        if not settings.rate_limit_headers:
            return Refusal("rate_limit_exceeded", message, {}, None)
        headers = {
            "Retry-After": str(wait),
            "X-RateLimit-Limit": str(usage.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(usage.reset)),
            "X-RateLimit-Window": f"{settings.rate_window:g}",
        }
        return Refusal("rate_limit_exceeded", message, headers, wait)

    def refuse_key(self, address: str, settings: SimulatorSettings, now: float) -> None:
        """An address sent a key that was refused; block it once it sent too many."""
        if settings.ip_block_after is None:
            return
        key = (address, _window(settings, now))
        self._refused[key] = self._refused.get(key, 0) + 1
        if self._refused[key] >= settings.ip_block_after:
            self._blocked_until[address] = now + settings.ip_block_seconds

    def blocked(self, address: str, settings: SimulatorSettings, now: float) -> Refusal | None:
        """The 429 ``ip_blocked`` for a blocked address, or None."""
        until = self._blocked_until.get(address)
        if until is None or now >= until:
            return None
        message = "Too many invalid API keys from this address; it is blocked for a while"
        if not settings.rate_limit_headers:
            return Refusal("ip_blocked", message, {}, None)
        wait = max(1, math.ceil(until - now))
        return Refusal("ip_blocked", message, {"Retry-After": str(wait)}, wait)

    def unblock(self) -> None:
        """Lift every address block and forget the refused keys counted."""
        self._blocked_until.clear()
        self._refused.clear()
