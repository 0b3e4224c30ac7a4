"""The platform's rate limits: requests per key per calendar window."""

from __future__ import annotations

import math

import attrs

from oec_async.testing._settings import SimulatorSettings

__all__ = ["RateLimiter", "Refusal"]


@attrs.frozen
class Refusal:
    """A request the limiter refuses: the 429 to send."""

    code: str
    message: str
    headers: dict[str, str]
    retry_after: int | None


class RateLimiter:
    """Counts each key's requests per calendar window (``floor(now / window)``)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    def admit(self, identity: str, settings: SimulatorSettings, now: float) -> Refusal | None:
        """Count one request by ``identity``; the refusal to send if over the limit."""
        limit = settings.read_limit
        if limit is None:
            return None
        window = settings.rate_window
        bucket = math.floor(now / window)
        count = self._counts.get((identity, bucket), 0) + 1
        self._counts[(identity, bucket)] = count
        if count <= limit:
            return None
        reset = (bucket + 1) * window
        wait = max(1, math.ceil(reset - now))
        return Refusal(
            code="rate_limit_exceeded",
            message="Rate limit exceeded",
            headers={
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(reset)),
            },
            retry_after=wait,
        )
