"""Step 2, asking for the rest: one GET for (part of) an artifact, its answer judged.

:meth:`Requester.open` sends ``Range``/``If-Range`` as the :class:`~._judge.Ask` says,
judges the response with :func:`~._judge.judge_response`, and either hands a usable body
to the caller or raises the signal the retry engine acts on. The single stream and every
range of a segmented file ask through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

import aiohttp

from oec_async._redact import redact_url
from oec_async._status import error_for_status
from oec_async.download._hosts import host_slot
from oec_async.download._judge import Ask, Body, Fail, Refresh, Restart, Retry, judge_response
from oec_async.download._signals import Expired, Transient
from oec_async.download._signals import Restart as RestartSignal
from oec_async.download._source import StorageSettings
from oec_async.download._urls import URLSource
from oec_async.errors import StorageError

__all__ = ["Requester"]

logger = logging.getLogger("oec_async.download")


def _range_header(ask: Ask) -> str:
    end = "" if ask.end is None else str(ask.end - 1)
    return f"bytes={ask.start}-{end}"


class Requester:
    """Sends the GETs of one artifact.

    Args:
        artifact: the artifact's name, for errors and logs.
        urls: where the artifact's current URL comes from (and is renewed).
        session: the storage session.
        settings: timeouts and TLS.
        extra_headers: headers for a URL (the API's authorization on the API's origin).
    """

    def __init__(
        self,
        artifact: str,
        urls: URLSource,
        session: aiohttp.ClientSession,
        settings: StorageSettings,
        extra_headers: Callable[[str], Mapping[str, str]],
    ) -> None:
        self.artifact = artifact
        self.urls = urls
        self.session = session
        self.settings = settings
        self.extra_headers = extra_headers
        # No total limit, ever: a multi-GB dump may take hours. A silent socket is a stall.
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.idle_timeout
        )

    def _headers(self, url: str, ask: Ask) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity", **self.extra_headers(url)}
        if ask.ranged:
            headers["Range"] = _range_header(ask)
            if ask.identity is not None and ask.identity.if_range:
                headers["If-Range"] = ask.identity.if_range
        return headers

    @contextlib.asynccontextmanager
    async def open(
        self, ask: Ask, *, own_budget: bool = False, read_bufsize: int | None = None
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, Body]]:
        """The response and its judged body; raises the signal of any other decision.

        The request holds one of its host's slots while it is answered, unless it is a
        range of a segmented file (``own_budget``: the file's own connections, see
        :mod:`._hosts`). The response headers must arrive within the idle timeout *in
        all*: a server that drips one header line at a time resets a read timeout
        forever, never this one.
        """
        url, generation = await self.urls.get(self.artifact)
        per_host = None if own_budget else self.settings.connections_per_host
        async with (
            host_slot(self.session, url, per_host),
            self._judged(ask, url, generation, read_bufsize) as answer,
        ):
            yield answer

    @contextlib.asynccontextmanager
    async def _judged(
        self, ask: Ask, url: str, generation: int, read_bufsize: int | None
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, Body]]:
        headers = self._headers(url, ask)
        on_api = "Authorization" in headers
        async with asyncio.timeout(self.settings.idle_timeout):
            resp = await self.session.get(
                url,
                headers=headers,
                timeout=self.timeout,
                ssl=self.settings.ssl,
                # The key rides on API-origin requests: never let a redirect carry it away.
                allow_redirects=not on_api,
                read_bufsize=read_bufsize,
            )
        try:
            logger.debug(
                "GET %s [%s] -> %d",
                redact_url(str(resp.url)),
                headers.get("Range", "full"),
                resp.status,
            )
            decision = judge_response(resp.status, resp.headers, _with_origin(ask, on_api))
            if isinstance(decision, Body):
                yield resp, decision
                return
            await self._refuse(decision, generation, url, on_api)
        finally:
            resp.release()

    async def _refuse(
        self, decision: Restart | Refresh | Retry | Fail, generation: int, url: str, on_api: bool
    ) -> None:
        if isinstance(decision, Refresh):
            await self.urls.refresh(generation)
            raise Expired
        if isinstance(decision, Restart):
            raise RestartSignal(decision.reason)
        if isinstance(decision, Retry):
            raise Transient(decision.reason, decision.delay)
        if on_api and decision.status in (401, 403):
            # The key was refused on the API's own origin: say so, as the API would.
            raise error_for_status(
                decision.status,
                None,
                method="GET",
                path=urlsplit(url).path,
                fallback_message=f"{self.artifact}: {decision.reason}",
            )
        raise StorageError(decision.reason, artifact=self.artifact, status=decision.status)


def _with_origin(ask: Ask, on_api: bool) -> Ask:
    if ask.api_origin == on_api:
        return ask
    return Ask(start=ask.start, end=ask.end, identity=ask.identity, api_origin=on_api)
