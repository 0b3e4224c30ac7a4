"""When to retry, and how long to wait: backoff with full jitter and server-given delays."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import attrs

__all__ = [
    "RETRYABLE_STATUSES",
    "Attempt",
    "RetryPolicy",
    "reset_wait",
    "retry_delay",
    "server_retry_after",
]

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


def reset_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until ``X-RateLimit-Reset``: an epoch timestamp or a number of seconds,
    depending on the deployment. None when absent or unreadable."""
    value = headers.get("X-RateLimit-Reset")
    reset = _parse_seconds(value.strip()) if value is not None else None
    if reset is None:
        return None
    if reset > 1_000_000_000:
        return max(0.0, reset - (time.time() if now is None else now))
    return reset


@attrs.frozen
class Attempt:
    """What one attempt of a request came to, as far as retrying is concerned.

    ``status`` is None when no HTTP answer came; ``sent`` says whether the request may
    have reached the server (False only when the connection was never made); ``asked``
    is the wait the server asked for (None: it said nothing), and ``next_window`` the
    wait until just past the next calendar window, which a 429 without any header means.
    """

    idempotent: bool
    status: int | None = None
    code: str | None = None
    asked: float | None = None
    next_window: float | None = None
    sent: bool = True
    certificate: bool = False


def retry_delay(
    attempt: Attempt,
    retry_number: int,
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before retry number ``retry_number`` (1 for the first), or None
    to raise now. A pure decision (API.md sections 1, 2 and 10):

    - no retry beyond ``max_retries``, nor after a certificate failure;
    - a request that never reached the server (no connection) is always safe to retry;
      one that may have reached it is retried only when idempotent: a POST that creates
      a backup is never sent twice;
    - 429 means "refused without acting", for every method, except ``ip_blocked`` (15
      minutes: tell the caller now); the wait is the server's (capped by ``max_wait``),
      or, when it said nothing, until just past the next calendar window (at most a
      window and a second: never capped);
    - 408 and 5xx are retried for idempotent requests only (a POST may have acted);
    - every other status is final.
    """
    if retry_number > policy.max_retries or attempt.certificate:
        return None
    if attempt.status is None:
        if attempt.idempotent or not attempt.sent:
            return policy.backoff(retry_number, rng)
        return None
    if attempt.status == 429:
        if attempt.code == "ip_blocked":
            return None
        if attempt.asked is None and attempt.next_window is not None:
            return attempt.next_window
    elif not (attempt.idempotent and attempt.status in RETRYABLE_STATUSES):
        return None
    if attempt.asked is None:
        return policy.backoff(retry_number, rng)
    return attempt.asked if attempt.asked <= policy.max_wait else None
