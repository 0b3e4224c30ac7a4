"""The API request loop: pacing, retries, redirects, error mapping and redacted logging.

Every API call goes through :meth:`APITransport.get_json`. The endpoints in
``_client.py`` know nothing about any of this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from oec_async._ratelimit import RateLimiter
from oec_async._redact import redact_text, redact_url
from oec_async._retry import RETRYABLE_STATUSES, RetryPolicy, server_retry_after
from oec_async.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)

__all__ = ["APITransport", "error_for_status", "is_certificate_error", "parse_error_body"]

logger = logging.getLogger("oec_async.http")

_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_TITLE = re.compile(r"(?is)<title[^>]*>(.*?)</title>")
_TAGS = re.compile(r"(?s)<[^>]+>")


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _describe_validation_list(items: list[Any]) -> str:
    parts = []
    for item in items:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else None
            msg = _text_of(item.get("msg")) or _text_of(item)
            parts.append(f"{where}: {msg}" if where else str(msg))
        else:
            parts.append(str(item))
    return "; ".join(parts)


def parse_error_body(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from any of the platform's four error-body shapes.

    - ``{"detail": "text"}``
    - ``{"detail": {"error": code, "message": text, ...}}``
    - ``{"detail": [{"loc": [...], "msg": text, "type": code}, ...]}`` (validation)
    - ``{"error": code, "message": text, "details": ...}``
    """
    if isinstance(body, str):
        return None, body or None
    if not isinstance(body, dict):
        return None, None
    detail = body.get("detail")
    if isinstance(detail, str):
        return _text_of(body.get("error")), detail
    if isinstance(detail, dict):
        code = detail.get("error") or detail.get("code") or detail.get("type")
        message = detail.get("message") or detail.get("msg") or detail.get("detail")
        return _text_of(code), _text_of(message)
    if isinstance(detail, list):
        first = detail[0] if detail and isinstance(detail[0], dict) else {}
        code = first.get("type") if isinstance(first, dict) else None
        return _text_of(code) or "validation_error", _describe_validation_list(detail)
    error = body.get("error")
    if isinstance(error, dict):  # {"error": {"code": ..., "message": ...}}
        return _text_of(error.get("code") or error.get("type")), _text_of(error.get("message"))
    message = body.get("message") or body.get("msg")
    return _text_of(error), _text_of(message)


def _summarise_text(text: str, content_type: str) -> str:
    """A short, readable account of a non-JSON body: an HTML page's title, or its start."""
    if "html" in content_type or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        shown = title.group(1) if title else _TAGS.sub(" ", text)
        shown = " ".join(shown.split())[:160]
        return f"unexpected HTML page ({shown})" if shown else "unexpected HTML page"
    return " ".join(text.split())[:200] or "empty body"


def error_for_status(
    status: int,
    body: Any,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
    fallback_message: str | None = None,
    keep_body: bool = True,
) -> APIError:
    """The error for an error status, with code and message read from the body.

    ``keep_body=False`` (a secret request) reads code and message but keeps no body.
    """
    code, message = parse_error_body(body)
    message = redact_text(message or fallback_message or f"HTTP {status}")
    code = redact_text(code) if code else None
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "body": body if keep_body else None,
        "method": method,
        "path": path,
    }
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return _STATUS_ERRORS.get(status, APIError)(message, **kwargs)


def is_certificate_error(exc: BaseException) -> bool:
    """TLS verification failed: permanent, whatever the number of retries."""
    return isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError)


def _connection_error(exc: BaseException, method: str, path: str) -> APIConnectionError:
    # aiohttp's messages may carry the full URL; only a redacted description survives, and
    # the original exception is not chained (tracebacks would print it).
    detail = redact_text(str(exc)) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return APITimeoutError(f"{method} {path}: timed out ({type(exc).__name__})")
    return APIConnectionError(f"{method} {path}: {type(exc).__name__}: {detail}")


class _RedirectRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class _OffOriginRedirect(_RedirectRefused):
    def __init__(self, status: int, target: str) -> None:
        super().__init__(
            status,
            f"the API redirected to another origin ({target}): not followed (the public "
            "API never redirects, and the key only goes to the API's own origin)",
        )


class _TooManyRedirects(_RedirectRefused):
    def __init__(self, status: int) -> None:
        super().__init__(status, f"more than {_MAX_REDIRECTS} redirects: not followed")


class APITransport:
    """Sends GETs to the API and returns decoded JSON, or raises the matching error."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        policy: RetryPolicy,
        limiter: RateLimiter | None,
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
        self.limiter = limiter
        # One exchange (headers and body) is bounded by ``timeout`` with a deadline of our
        # own: aiohttp's read timeouts are idle timeouts, which a server dripping a header
        # line at a time resets forever.
        self.deadline = timeout
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self.user_agent = user_agent
        self.ssl = ssl
        self.max_response_bytes = max_response_bytes
        self._origin = origin(base_url)
        self.request_count = 0

    def __repr__(self) -> str:
        return f"APITransport(base_url={self.base_url!r})"

    async def get_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, secret: bool = False
    ) -> Any:
        """GET ``base_url + path``; retried, paced and mapped to errors as API.md says.

        ``secret`` marks a request whose answer holds secrets (presigned URLs): no error
        raised for it keeps the body, or quotes it, whatever the server sent.
        """
        method = "GET"
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        shown = f"{path}?{urlencode(query)}" if query else path
        url = self.base_url + path
        retries = 0
        while True:
            started = time.monotonic()
            attempt = retries + 1
            try:
                status, headers, raw = await self._send(url, query)
            except _RedirectRefused as refused:
                raise InvalidResponseError(
                    str(refused), status=refused.status, method=method, path=shown
                ) from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                error: APIError | APIConnectionError = _connection_error(exc, method, shown)
                logger.debug(
                    "%s %s -> %s after %.1f ms (attempt %d)",
                    method,
                    shown,
                    type(exc).__name__,
                    (time.monotonic() - started) * 1000,
                    attempt,
                )
                if is_certificate_error(exc):
                    raise error from None  # an untrusted certificate stays so: no retry
                delay = self.policy.backoff(retries + 1)
            else:
                logger.debug(
                    "%s %s -> %d in %.1f ms (attempt %d)",
                    method,
                    shown,
                    status,
                    (time.monotonic() - started) * 1000,
                    attempt,
                )
                self._observe_budget(headers)
                if raw is None:
                    raise InvalidResponseError(
                        f"response body larger than {self.max_response_bytes} bytes",
                        status=status,
                        method=method,
                        path=shown,
                    )
                body, decode_problem = self._decode(raw, headers, secret=secret)
                if 200 <= status < 300:
                    if decode_problem is not None:
                        raise InvalidResponseError(
                            decode_problem,
                            status=status,
                            body=None if secret else body,
                            method=method,
                            path=shown,
                        )
                    return body
                asked = server_retry_after(headers, body)
                error = error_for_status(
                    status,
                    body,
                    keep_body=not secret,
                    method=method,
                    path=shown,
                    retry_after=asked,
                    fallback_message=decode_problem,
                )
                if status not in RETRYABLE_STATUSES:
                    raise error
                if asked is not None:
                    if asked > self.policy.max_wait:
                        raise error  # e.g. ip_blocked for 15 minutes: tell the caller now
                    delay = asked
                else:
                    delay = self.policy.backoff(retries + 1)
                if status == 429 and self.limiter is not None:
                    # Every caller waits, not only this one (at least one base backoff when
                    # the server did not say how long).
                    self.limiter.pause(max(delay, self.policy.base) if asked is None else delay)
            if retries >= self.policy.max_retries:
                raise error
            retries += 1
            logger.info("%s %s: %s; retry %d in %.2f s", method, shown, error, retries, delay)
            await asyncio.sleep(delay)

    async def _send(self, url: str, query: Mapping[str, str]) -> tuple[int, Any, bytes | None]:
        """One API call on the wire: its request, and the same-origin redirects it leads to.

        The public API never redirects (API.md section 1), but a proxy in front of it may
        (a trailing slash, say): a hop to the API's own origin is followed, and paced and
        counted like any request, since the platform counts it. A hop to another origin
        is refused (the key must never go there, and nothing the API documents lives
        there).
        """
        session = await self._session()
        params: Mapping[str, str] | None = query
        for _ in range(_MAX_REDIRECTS + 1):
            if self.limiter is not None:
                await self.limiter.acquire()
            status, headers, raw, location = await self._exchange(session, url, params)
            if status in _REDIRECTS and location:
                target = urljoin(url, location)
                if origin(target) != self._origin:
                    raise _OffOriginRedirect(status, redact_url(target))
                url = target
                params = None  # the Location carries its own query
                continue
            return status, headers, raw
        raise _TooManyRedirects(status)

    async def _exchange(
        self, session: aiohttp.ClientSession, url: str, params: Mapping[str, str] | None
    ) -> tuple[int, Any, bytes | None, str | None]:
        """One request on the wire, headers and body within ``timeout`` seconds."""
        self.request_count += 1
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Authorization": f"Bearer {self._api_key}",
        }
        async with (
            asyncio.timeout(self.deadline),
            session.get(
                url,
                params=params,
                headers=headers,
                allow_redirects=False,
                timeout=self.timeout,
                ssl=self.ssl,
            ) as resp,
        ):
            if resp.status in _REDIRECTS:
                return resp.status, resp.headers, b"", resp.headers.get("Location")
            return resp.status, resp.headers, await self._read_capped(resp), None

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

    @staticmethod
    def _decode(
        raw: bytes, headers: Mapping[str, str], *, secret: bool = False
    ) -> tuple[Any, str | None]:
        """``(body, problem)``: the JSON body, or the text and why it is not usable JSON.

        The problem quotes the start of the text (redacted) to help whoever reads it,
        except for a ``secret`` answer, whose text is never quoted.
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
            summary = redact_text(_summarise_text(text, content_type))
        kind = content_type.split(";")[0].strip() or "no content type"
        if "json" in content_type:
            return text, f"invalid JSON body ({kind}): {summary}"
        return text, f"expected JSON, got {kind}: {summary}"

    def _observe_budget(self, headers: Mapping[str, str]) -> None:
        """Honour ``X-RateLimit-Remaining: 0`` before the server has to say 429."""
        if self.limiter is None or headers.get("X-RateLimit-Remaining", "").strip() != "0":
            return
        try:
            reset = float(headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return
        # Either an epoch timestamp or a number of seconds, depending on the deployment.
        wait = reset - time.time() if reset > 1_000_000_000 else reset
        if 0 < wait <= self.policy.max_wait:
            self.limiter.pause(wait)
