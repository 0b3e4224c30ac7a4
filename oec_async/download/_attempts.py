"""The one retry engine of a transfer: used by a whole-file stream and by each range of a
segmented file alike.

A stream tries, fails, waits and tries again from where its bytes stopped. Its budget
counts *consecutive* failed attempts: any byte that reached the disk since the last
failure means the link works, so the count (and the count of URL renewals) starts over —
a multi-hour download through a flaky link never gives up while it moves. URL renewals
have their own small budget: storage that refuses freshly signed URLs again and again is
refusing us, not expiring.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from oec_async._http import is_certificate_error
from oec_async._redact import redact_text
from oec_async._retry import RetryPolicy
from oec_async.download._signals import Expired, Restart, Transient
from oec_async.errors import DownloadError, StorageError

__all__ = ["MAX_URL_REFRESHES", "Attempts", "describe"]

logger = logging.getLogger("oec_async.download")

#: Renewals in a row (without a byte received) before storage's refusal is final.
MAX_URL_REFRESHES = 3


def describe(exc: BaseException) -> str:
    """A connection error as a short, redacted reason."""
    if isinstance(exc, TimeoutError):
        return "stalled"
    text = redact_text(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Attempts:
    """The retry budget of one stream, and the loop that spends it.

    Args:
        policy: retries allowed (``max_retries`` consecutive failures) and backoff.
        artifact: named in errors and logs.
        where: what the stream is ("", or "a range"), for messages.
        on_retry: called with the reason before each wait (a progress event).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        artifact: str,
        *,
        where: str = "",
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.artifact = artifact
        self.where = where
        self.on_retry = on_retry
        self.failures = 0
        self.refreshes = 0

    async def attempt(
        self,
        request: Callable[[], Awaitable[None]],
        position: Callable[[], int],
        *,
        restart: Callable[[], None] | None = None,
    ) -> None:
        """Run ``request`` once; on a failure, account for it and wait before returning.

        ``position`` tells how far the bytes got (progress resets the budget).
        ``restart`` handles a :class:`Restart` (discard and start over, counted as a
        failure); without it, a restart propagates to the caller. Raises
        :class:`~oec_async.errors.DownloadError` once the budget is spent.
        """
        before = position()
        try:
            await request()
            return
        except Expired:
            self._refreshed(position() > before)
            return
        except Restart as exc:
            if restart is None:
                raise
            logger.info("%s: %s; restarting from zero", self.artifact, exc)
            restart()
            reason, delay = str(exc), None
        except Transient as exc:
            reason, delay = str(exc), exc.delay
        except (aiohttp.ClientError, TimeoutError) as exc:
            if is_certificate_error(exc):
                raise StorageError(
                    f"storage's TLS certificate is not trusted: {describe(exc)}",
                    artifact=self.artifact,
                ) from None
            reason, delay = describe(exc), None
        await self._failed(reason, delay, position(), progressed=position() > before)

    def _refreshed(self, progressed: bool) -> None:
        if progressed:
            self.failures = self.refreshes = 0
        self.refreshes += 1
        if self.refreshes > MAX_URL_REFRESHES:
            raise StorageError(
                "storage keeps refusing freshly signed URLs (403/400)", artifact=self.artifact
            )

    async def _failed(
        self, reason: str, delay: float | None, offset: int, *, progressed: bool
    ) -> None:
        # Bytes arrived since the last failure: this is a fresh run of bad luck.
        self.failures = 1 if progressed else self.failures + 1
        if progressed:
            self.refreshes = 0
        if self.failures > self.policy.max_retries:
            raise DownloadError(
                f"{self.where + ' ' if self.where else ''}gave up after {self.failures} failed "
                f"attempts without progress (last: {reason}); {offset} bytes kept for a resume",
                artifact=self.artifact,
            )
        wait = min(delay, self.policy.max_wait) if delay is not None else None
        if wait is None:
            wait = self.policy.backoff(self.failures)
        logger.info(
            "%s: %s%s at byte %d; retry %d in %.2f s",
            self.artifact,
            f"{self.where} " if self.where else "",
            reason,
            offset,
            self.failures,
            wait,
        )
        if self.on_retry is not None:
            self.on_retry(reason)
        await asyncio.sleep(wait)
