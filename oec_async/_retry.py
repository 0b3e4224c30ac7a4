"""When to retry, and how long to wait: backoff with full jitter and server-given delays."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import attrs

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "server_retry_after"]

#: Statuses an idempotent GET is retried on (API.md section 2).
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with full jitter (AWS architecture blog), capped.

    ``max_retries`` counts retries after the first attempt. ``max_wait`` caps a delay the
    server asks for: asking for more (an ``ip_blocked`` 429 asks for 15 minutes) ends the
    retries at once instead of silently parking the caller.
    """

    max_retries: int = 3
    base: float = 0.5
    cap: float = 8.0
    max_wait: float = 60.0

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """The jittered delay before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.cap, self.base * (2 ** max(retry_number - 1, 0)))
        return (rng or random).uniform(0, ceiling)


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None  # NaN and inf are no delay


def _parse_http_date(value: str, now: float | None = None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """The delay the server asked for, in seconds, from any of the places it may say so.

    Order: ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date), then a
    ``retry_after`` field in the JSON body (top level or under ``detail``).
    """
    ms = headers.get("retry-after-ms")
    if ms is not None and (parsed := _parse_seconds(ms)) is not None:
        return parsed / 1000.0
    header = headers.get("Retry-After")
    if header is not None:
        header = header.strip()
        parsed = _parse_seconds(header)
        if parsed is None:
            parsed = _parse_http_date(header)
        if parsed is not None:
            return parsed
    for holder in (body, body.get("detail") if isinstance(body, dict) else None):
        if isinstance(holder, dict):
            value = holder.get("retry_after")
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
            if isinstance(value, str) and (parsed := _parse_seconds(value)) is not None:
                return parsed
    return None
