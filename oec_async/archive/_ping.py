"""Dead-man's-switch pings in the healthchecks.io convention.

``URL/start`` when a run begins, then ``URL`` when it succeeded or ``URL/<exit status>``
when it did not (healthchecks.io, and services that copy it, read 1..255 as a failure).
Both carry the same ``rid`` query parameter, so the service pairs them and measures the
run even when runs overlap; the final ping's body is a short plain-text summary.

A ping never fails the run: it has a short timeout, is retried twice, and a failure is a
logged warning. The URL's path is a secret (whoever knows it can report for the check),
so it never appears in a log or message: only its scheme and host do.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from oec_async.errors import ConfigurationError

__all__ = ["Pinger", "redact_url"]

logger = logging.getLogger("oec_async.archive")

_MAX_BODY = 10_000


def redact_url(url: str) -> str:
    """``https://hc-ping.com/<uuid>`` -> ``https://hc-ping.com/…``: scheme and host only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<ping URL>"
    return f"{parts.scheme}://{parts.hostname or '?'}/…" if parts.scheme else "<ping URL>"


class Pinger:
    """Pings one check URL: :meth:`start`, then :meth:`finish` with the exit status.

    Args:
        url: the check's ping URL (``https://hc-ping.com/<uuid>``, or
            ``https://hc-ping.com/<ping-key>/<slug>``, or a self-hosted one).
        timeout: seconds for each attempt.
        retries: attempts after the first.

    Raises:
        ConfigurationError: the URL is not ``http(s)://host/…``.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 2) -> None:
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"the ping URL {redact_url(url)} is not an http(s) URL")
        self._parts = parts
        self.timeout = timeout
        self.retries = retries
        self.run_id = uuid.uuid4()
        #: Why the last ping failed (URL redacted), or None after a successful one.
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Pinger({redact_url(urlunsplit(self._parts))})"

    def url_for(self, suffix: str) -> str:
        """The URL for ``""`` (success), ``"start"``, ``"fail"`` or an exit status."""
        path = self._parts.path.rstrip("/")
        if suffix:
            path = f"{path}/{suffix}"
        query = [*parse_qsl(self._parts.query, keep_blank_values=True), ("rid", str(self.run_id))]
        return urlunsplit(self._parts._replace(path=path or "/", query=urlencode(query)))

    async def start(self) -> bool:
        """Ping ``URL/start``; True if the service took it."""
        return await self._send("start", "")

    async def finish(self, exit_status: int, summary: str = "") -> bool:
        """Ping ``URL`` (exit status 0) or ``URL/<exit status>``; True if the service took
        it. ``summary`` (no secrets in it) is sent as the body, cut to 10 kB."""
        suffix = "" if exit_status == 0 else str(exit_status)
        return await self._send(suffix, summary[:_MAX_BODY])

    async def _send(self, suffix: str, body: str) -> bool:
        url = self.url_for(suffix)
        shown = redact_url(url) + (f" ({suffix})" if suffix else " (success)")
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        last_error = ""
        # A session of its own, without cookies or default headers: nothing of the API's
        # session (its key above all) can ride along.
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as s:
            for attempt in range(self.retries + 1):
                if attempt:
                    await asyncio.sleep(0.5 * attempt)
                try:
                    async with s.post(url, data=body.encode(), allow_redirects=False) as response:
                        await response.read()
                        if response.status < 300:
                            logger.debug("ping %s: HTTP %d", shown, response.status)
                            self.last_error = None
                            return True
                        last_error = f"HTTP {response.status}"
                        if response.status < 500 and response.status != 429:
                            break  # the service refused it: asking again will not help
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    last_error = type(exc).__name__ if not str(exc) else _no_url(exc)
        self.last_error = f"ping {shown} failed: {last_error}"
        logger.warning("%s (the run goes on)", self.last_error)
        return False


def _no_url(exc: BaseException) -> str:
    # aiohttp's messages may quote the URL (and so its secret path): keep the class only
    # when they do.
    text = str(exc)
    return type(exc).__name__ if "/" in text else f"{type(exc).__name__}: {text}"
