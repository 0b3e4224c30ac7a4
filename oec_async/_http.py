"""The API request loop: local refusals, pacing, retries, redirects, deadlines, error
mapping and redacted logging.

Every API call goes through :meth:`APITransport.request`, described by an
:class:`APIRequest`. The endpoints in ``_client.py`` know nothing about any of this; the
decision to retry is :func:`oec_async._retry.retry_delay`, and what an error answer means
is :mod:`oec_async._status`.

Sending a request, step by step:

1. Refuse locally what the server would refuse anyway: a key it refused before (a fleet
   behind one address must not hammer: ten refused keys block the address), an address
   it blocked (``ip_blocked``, until the block lifts), a write with a read-only key.
2. Take a slot of the request's budget (reads or writes), for every request on the wire:
   each redirect hop too.
3. Send, headers and body within ``timeout`` (a deadline of our own: aiohttp's read
   timeout is an idle timeout, which a server dripping a header line at a time resets).
   A write goes on a fresh connection, so that a pooled connection the server had closed
   can never be mistaken for a request that may have reached it.
4. Learn from the answer: ``X-RateLimit-Limit`` sets the budget's pace,
   ``X-RateLimit-Remaining: 0`` pauses it until the reset, a 429 pauses every caller of
   the budget.
5. Retry or raise, as :func:`~oec_async._retry.retry_delay` decides. A request that may
   have reached the server is never resent unless it is idempotent: a POST that creates a
   backup is sent once, and the error then says what to check.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
import attrs

from oec_async._loops import LoopBoundLock
from oec_async._ratelimit import Budget, Pacer, wait_past_next_window
from oec_async._redact import redact_text, redact_url
from oec_async._retry import Attempt, RetryPolicy, reset_wait, retry_delay, server_retry_after
from oec_async._status import error_for_status, summarise_text
from oec_async.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    InvalidResponseError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = ["APIRequest", "APITransport", "SessionSource", "is_certificate_error", "origin"]

logger = logging.getLogger("oec_async.http")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
#: How long an ``ip_blocked`` lasts when the server does not say (API.md section 1).
_IP_BLOCK_SECONDS = 15 * 60.0
_READ_ONLY_PREFIX = "oec_live_ro_"


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, the default port filled in."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def is_certificate_error(exc: BaseException) -> bool:
    """TLS verification failed: permanent, whatever the number of retries."""
    return isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError)


def _never_connected(exc: BaseException) -> bool:
    """The connection was never made, so the request cannot have reached the server."""
    return isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


@attrs.frozen
class APIRequest:
    """One API call as an endpoint describes it.

    ``secret``: the answer holds secrets (presigned URLs), so no error raised for it keeps
    or quotes the body. ``unsure``: for a request that is not idempotent, what to tell the
    caller when it may have reached the server and no answer says what it did (the POST
    is never resent).
    """

    path: str
    method: str = "GET"
    params: Mapping[str, Any] = attrs.field(factory=dict)
    json: Any = None
    secret: bool = False
    unsure: str | None = None

    @property
    def idempotent(self) -> bool:
        return self.method in ("GET", "HEAD")

    @property
    def budget(self) -> Budget:
        """Reads and writes are budgeted separately by the platform."""
        return "read" if self.idempotent else "write"

    @property
    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.params.items() if v is not None}

    @property
    def shown(self) -> str:
        """The path and query as messages and logs show them (ids and filters only)."""
        query = self.query
        return f"{self.path}?{urlencode(query)}" if query else self.path


class SessionSource(Protocol):
    """Where the transport gets its session from (the client owns sessions)."""

    async def __call__(self, *, write: bool) -> aiohttp.ClientSession: ...


class _RedirectRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@attrs.frozen
class _Answer:
    status: int
    headers: Mapping[str, str]
    raw: bytes | None  # None: larger than any answer the API documents
    location: str | None = None


class APITransport:
    """Sends API requests and returns decoded JSON, or raises the matching error."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        session: SessionSource,
        policy: RetryPolicy,
        pacer: Pacer,
        timeout: float,
        connect_timeout: float,
        user_agent: str,
        ssl: Any = True,
        max_response_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._session = session
        self.policy = policy
        self.pacer = pacer
        self.deadline = timeout
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self.user_agent = user_agent
        self.ssl = ssl
        self.max_response_bytes = max_response_bytes
        self._origin = origin(base_url)
        self.request_count = 0
        # Until the server has answered once as to a known key, one call at a time: a burst
        # of calls with a bad key would otherwise all be refused, and ten refused keys from
        # one address block it for 15 minutes.
        self._key_proven = False
        self._probation = LoopBoundLock()
        self._refused: AuthenticationError | None = None
        self._blocked: RateLimitError | None = None
        self._blocked_until = 0.0

    def __repr__(self) -> str:
        return f"APITransport(base_url={self.base_url!r})"

    async def request(self, req: APIRequest) -> Any:
        """Send ``req`` (retried, paced and mapped to errors as API.md says); the JSON body.

        Raises:
            AuthenticationError: the key was refused (now, or by an earlier call).
            PermissionDeniedError: a write with a read-only key (raised locally).
            RateLimitError: retries ran out, the server asked for a longer wait than
                ``max_retry_wait``, or the address is blocked (``ip_blocked``).
            APIError: any other error status, or an answer that is not JSON.
            APIConnectionError: no answer (an ``APITimeoutError`` for a timeout).
        """
        retries = 0
        while True:
            if self._key_proven:
                body, error, attempt = await self._attempt(req, retries + 1)
            else:
                # Until the key has been answered for, one exchange at a time (and the
                # answer read before the next caller goes): a burst with a bad key makes
                # one refusal, not one per caller. Retry sleeps are outside the lock.
                async with self._probation.get():
                    body, error, attempt = await self._attempt(req, retries + 1)
            if error is None:
                return body
            retries += 1
            delay = retry_delay(attempt, retries, self.policy) if attempt is not None else None
            if delay is None:
                raise error
            logger.info(
                "%s %s: %s; retry %d in %.2f s", req.method, req.shown, error, retries, delay
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self, req: APIRequest, number: int
    ) -> tuple[Any, APIError | APIConnectionError | None, Attempt | None]:
        """One attempt: ``(body, None, None)`` on success, else ``(None, error, attempt)``
        (``attempt`` None: final, whatever the retries left)."""
        self._refuse_locally(req)
        try:
            answer = await self._send(req, attempt=number)
        except _RedirectRefused as refused:
            error = InvalidResponseError(
                str(refused), status=refused.status, method=req.method, path=req.shown
            )
            return None, error, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            sent = not _never_connected(exc)
            attempt = Attempt(
                idempotent=req.idempotent, sent=sent, certificate=is_certificate_error(exc)
            )
            return None, self._connection_error(exc, req, sent), attempt
        return self._read(req, answer)

    # -- step 1: what is refused without asking --------------------------------------------

    def _refuse_locally(self, req: APIRequest) -> None:
        if self._refused is not None:
            refused = copy.copy(self._refused)
            refused.add_note("Refused earlier with this key: not sent again.")
            raise refused
        blocked_for = self._blocked_until - time.monotonic()
        if self._blocked is not None and blocked_for > 0:
            blocked = copy.copy(self._blocked)
            blocked.retry_after = blocked_for
            blocked.add_note(f"This address is blocked for {blocked_for:.0f} s more: not sent.")
            raise blocked
        if not req.idempotent and self._api_key.startswith(_READ_ONLY_PREFIX):
            raise PermissionDeniedError(
                "this API key is read-only (oec_live_ro_...): a write needs an "
                "oec_live_rw_ key (refused locally, nothing was sent)",
                status=403,
                code="read_only_key",
                method=req.method,
                path=req.shown,
            )

    def _remember(self, error: APIError) -> None:
        """A refused key, or a blocked address, stays so: later calls are refused here."""
        if isinstance(error, AuthenticationError):
            self._refused = error
        elif isinstance(error, RateLimitError) and error.code == "ip_blocked":
            self._blocked = error
            self._blocked_until = time.monotonic() + (error.retry_after or _IP_BLOCK_SECONDS)

    # -- steps 2 and 3: on the wire --------------------------------------------------------

    async def _send(self, req: APIRequest, *, attempt: int) -> _Answer:
        """One API call on the wire: its request, and the same-origin redirects it leads to.

        The public API never redirects (API.md section 1), but a proxy in front of it may
        (a trailing slash, say): a hop of a GET to the API's own origin is followed, and
        paced and counted like any request, since the platform counts it. A hop to
        another origin is refused (the key must never go there, and nothing the API
        documents lives there), and so is any redirect of a write (it is not resent).
        """
        session = await self._session(write=not req.idempotent)
        url = self.base_url + req.path
        params: Mapping[str, str] | None = req.query
        shown = req.shown
        for _ in range(_MAX_REDIRECTS + 1):
            await self.pacer.acquire(req.budget)
            answer = await self._exchange(session, req, url, params, shown, attempt)
            if answer.status not in _REDIRECTS or not answer.location:
                return answer
            target = urljoin(url, answer.location)
            if not req.idempotent:
                raise _RedirectRefused(
                    answer.status,
                    f"the API answered {req.method} with a redirect (to {redact_url(target)}), "
                    "which it never does: not followed, and the request not sent again",
                )
            if origin(target) != self._origin:
                raise _RedirectRefused(
                    answer.status,
                    f"the API redirected to another origin ({redact_url(target)}): not "
                    "followed (the public API never redirects, and the key only goes to the "
                    "API's own origin)",
                )
            url, params = target, None  # the Location carries its own query
            shown = urlsplit(redact_url(target)).path + " (redirected)"
        raise _RedirectRefused(answer.status, f"more than {_MAX_REDIRECTS} redirects: not followed")

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        req: APIRequest,
        url: str,
        params: Mapping[str, str] | None,
        shown: str,
        attempt: int,
    ) -> _Answer:
        """One request on the wire, headers and body within ``timeout`` seconds; one
        DEBUG line for it, with its time on the wire (pacing waits are not counted)."""
        self.request_count += 1
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Authorization": f"Bearer {self._api_key}",
        }
        started = time.monotonic()
        try:
            answer = await self._exchange_once(session, req, url, params, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log(req.method, shown, type(exc).__name__, started, attempt)
            raise
        _log(req.method, shown, str(answer.status), started, attempt)
        return answer

    async def _exchange_once(
        self,
        session: aiohttp.ClientSession,
        req: APIRequest,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> _Answer:
        async with (
            asyncio.timeout(self.deadline),
            session.request(
                req.method,
                url,
                params=params,
                json=req.json,
                headers=headers,
                allow_redirects=False,
                timeout=self.timeout,
                ssl=self.ssl,
            ) as resp,
        ):
            if resp.status in _REDIRECTS:
                return _Answer(resp.status, resp.headers, b"", resp.headers.get("Location"))
            return _Answer(resp.status, resp.headers, await self._read_capped(resp))

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None when it is larger than any answer the API documents."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > self.max_response_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    # -- steps 4 and 5: what the answer says -----------------------------------------------

    def _read(
        self, req: APIRequest, answer: _Answer
    ) -> tuple[Any, APIError | None, Attempt | None]:
        """``(body, error, attempt)``: the JSON body of a success, or the error with what
        the retry decision needs (``attempt`` None: an answer that is final whatever the
        retries left, such as a 2xx that is not the JSON the API documents)."""
        status, headers = answer.status, answer.headers
        self._learn(req.budget, headers)
        if status < 500 and status not in (401, 429):
            self._key_proven = True  # the API authenticated the key before answering this
        if answer.raw is None:
            too_large = f"response body larger than {self.max_response_bytes} bytes"
            return None, self._invalid(req, status, too_large), None
        body, problem = _decode(answer.raw, headers, secret=req.secret)
        if 200 <= status < 300:
            if problem is None:
                return body, None, None
            return None, self._invalid(req, status, problem, body), None
        asked = server_retry_after(headers, body)
        next_window = None
        if status == 429 and asked is None:
            asked = reset_wait(headers)
            if asked is None:  # no header at all: the key's calendar minute is spent
                next_window = wait_past_next_window(self.pacer.period)
        error = error_for_status(
            status,
            body,
            method=req.method,
            path=req.shown,
            retry_after=asked if asked is not None else next_window,
            fallback_message=problem,
            keep_body=not req.secret,
            note=self._unsure_note(req, status),
        )
        if isinstance(error, RateLimitError) and error.code == "ip_blocked" and asked is None:
            error.retry_after = _IP_BLOCK_SECONDS
        self._remember(error)
        attempt = Attempt(
            idempotent=req.idempotent,
            status=status,
            code=error.code,
            asked=asked,
            next_window=next_window,
        )
        if status == 429 and error.code != "ip_blocked":
            wait = asked if asked is not None else next_window
            # Every caller of the budget waits, not only this one (at least one base backoff
            # when the server's wait is zero).
            self.pacer.pause(req.budget, max(wait or 0.0, self.policy.base))
        return body, error, attempt

    def _learn(self, kind: Budget, headers: Mapping[str, str]) -> None:
        """``X-RateLimit-Limit`` sets the pace; ``X-RateLimit-Remaining: 0`` pauses the
        budget until the reset, before the server has to say 429."""
        limit = headers.get("X-RateLimit-Limit", "").strip()
        if limit.isdigit():
            self.pacer.learn_limit(kind, int(limit))
        if headers.get("X-RateLimit-Remaining", "").strip() == "0":
            wait = reset_wait(headers)
            if wait is not None and 0 < wait <= self.policy.max_wait:
                self.pacer.pause(kind, wait)

    def _invalid(
        self, req: APIRequest, status: int, problem: str, body: Any = None
    ) -> InvalidResponseError:
        return InvalidResponseError(
            problem,
            status=status,
            body=None if req.secret else body,
            method=req.method,
            path=req.shown,
        )

    @staticmethod
    def _unsure_note(req: APIRequest, status: int | None) -> str | None:
        """For a write the server may have carried out without saying so (no answer, a
        timeout, a 5xx from a gateway): what the caller should check."""
        if req.idempotent or req.unsure is None:
            return None
        if status is None or status == 408 or status >= 500:
            return req.unsure
        return None

    def _connection_error(
        self, exc: BaseException, req: APIRequest, sent: bool
    ) -> APIConnectionError:
        # aiohttp's messages may carry the full URL; only a redacted description survives,
        # and the original exception is not chained (tracebacks would print it).
        where = f"{req.method} {req.shown}"
        note = self._unsure_note(req, None) if sent else None
        tail = f"; {note}" if note else ""
        if isinstance(exc, TimeoutError):
            return APITimeoutError(f"{where}: timed out ({type(exc).__name__}){tail}")
        detail = redact_text(str(exc)) or type(exc).__name__
        return APIConnectionError(f"{where}: {type(exc).__name__}: {detail}{tail}")


def _log(method: str, shown: str, outcome: str, started: float, attempt: int) -> None:
    logger.debug(
        "%s %s -> %s in %.1f ms (attempt %d)",
        method,
        shown,
        outcome,
        (time.monotonic() - started) * 1000,
        attempt,
    )


def _decode(raw: bytes, headers: Mapping[str, str], *, secret: bool) -> tuple[Any, str | None]:
    """``(body, problem)``: the JSON body, or the text and why it is not usable JSON.

    The problem quotes the start of the text (redacted) to help whoever reads it, except
    for a ``secret`` answer, whose text is never quoted.
    """
    content_type = headers.get("Content-Type", "").lower()
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), None
    except ValueError:
        pass
    if secret:
        summary = f"{len(raw)} bytes, not shown: the answer may hold presigned URLs"
    else:
        summary = redact_text(summarise_text(text, content_type))
    kind = content_type.split(";")[0].strip() or "no content type"
    if "json" in content_type:
        return text, f"invalid JSON body ({kind}): {summary}"
    return text, f"expected JSON, got {kind}: {summary}"
