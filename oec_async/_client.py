"""``OECClient``: the platform's backup endpoints, and the entry points to the downloader.

Retries, pacing and error mapping live in ``_http.py``; streaming to disk lives in
``download/``. This module only says which path each call requests and what it returns.
"""

from __future__ import annotations

import logging
import ssl as ssl_module
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiohttp

from oec_async._answers import Expect, contradictions, describe
from oec_async._config import (
    check_count,
    check_expires_in,
    check_seconds,
    check_ssl,
    check_text,
    coerce_uuid,
    resolve_api_key,
    resolve_base_url,
)
from oec_async._convert import describe_error, structure
from oec_async._http import APITransport
from oec_async._loops import LoopBoundSession, check_borrowed_session
from oec_async._ratelimit import Pacer, RateLimiter
from oec_async._redact import mask_key
from oec_async._retry import RetryPolicy
from oec_async._version import __version__
from oec_async.errors import ConfigurationError, InvalidResponseError
from oec_async.models import Backup, BackupPage, BackupStatus, BackupType, DownloadURLs

if TYPE_CHECKING:
    from oec_async.download.backup import BackupDownload, DownloadOptions
    from oec_async.download.bulk import BatchProgress, PullResult
    from oec_async.download.progress import ProgressCallback

__all__ = ["OECClient"]

logger = logging.getLogger("oec_async")

T = TypeVar("T")
IdLike = uuid.UUID | str
_FILTER_TYPES = (BackupStatus, BackupType, str)


def _filter_value(value: BackupStatus | BackupType | str | None, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, _FILTER_TYPES) or not str(value).strip():
        raise ConfigurationError(f"{name} must be a non-empty string")
    return str(value.value if isinstance(value, BackupStatus | BackupType) else value)


def _check_page_args(page: int, page_size: int) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ConfigurationError(f"page must be an integer >= 1, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ConfigurationError(
            f"page_size must be an integer between 1 and 100, got {page_size!r}"
        )


class OECClient:
    """Async client of the OEC.sh public backups API.

    ::

        async with OECClient() as client:              # key from OEC_API_KEY
            latest = await client.latest_backup(env_id)
            result = await client.download_backup(latest, "backups/")

    ``timeout`` bounds one API request, and is the idle time after which a download stream
    that receives nothing counts as stalled (and is resumed); no total limit is ever put on
    a download. ``max_retries`` counts retries after the first attempt.
    ``requests_per_minute`` is the pacing budget per ``rate_limit_period`` seconds (a
    minute unless a test or a deployment with a different window says otherwise); None
    turns pacing off. ``session``, when
    given, is used for API calls and never closed by the client; storage downloads always
    use a session of the client's own, without cookies or default headers, so nothing a
    caller configured can leak to a storage host.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        requests_per_minute: int | None = 100,
        writes_per_minute: int | None = 15,
        rate_limit_period: float = 60.0,
        max_connections: int = 16,
        max_connections_per_host: int = 8,
        session: aiohttp.ClientSession | None = None,
        ssl: ssl_module.SSLContext | bool = True,
        user_agent: str | None = None,
    ) -> None:
        self._api_key = resolve_api_key(api_key)
        self.base_url = resolve_base_url(base_url)
        self.timeout = check_seconds(timeout, "timeout")
        self.connect_timeout = check_seconds(connect_timeout, "connect_timeout")
        self.max_retries: int = check_count(max_retries, "max_retries")
        max_retry_wait = check_seconds(max_retry_wait, "max_retry_wait", allow_zero=True)
        requests_per_minute = check_count(
            requests_per_minute, "requests_per_minute", minimum=1, allow_none=True
        )
        writes_per_minute = check_count(
            writes_per_minute, "writes_per_minute", minimum=1, allow_none=True
        )
        rate_limit_period = check_seconds(rate_limit_period, "rate_limit_period")
        self.max_connections: int = check_count(max_connections, "max_connections", minimum=1)
        self.max_connections_per_host: int = check_count(
            max_connections_per_host, "max_connections_per_host", minimum=1
        )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError(
                f"session must be an aiohttp.ClientSession or None, got {type(session).__name__}"
            )
        ssl = check_ssl(ssl)
        user_agent = check_text(user_agent, "user_agent")
        self.ssl = ssl
        self.user_agent = user_agent or f"oec-async/{__version__}"
        self._borrowed_session = session
        # Sessions are made lazily inside the running loop (aiohttp requires it), one per
        # loop, so one client serves several asyncio.run() calls.
        self._api_session = LoopBoundSession(self._make_api_session)
        self._write_session = LoopBoundSession(self._make_write_session)
        self._storage_session = LoopBoundSession(self._make_storage_session)
        self._closed = False
        self.retry_policy = RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)
        self.pacer = Pacer(requests_per_minute, writes_per_minute, rate_limit_period)
        self._transport = APITransport(
            base_url=self.base_url,
            api_key=self._api_key,
            session=self._get_api_session,
            policy=self.retry_policy,
            pacer=self.pacer,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            user_agent=self.user_agent,
            ssl=ssl,
        )

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The read budget's pacing (None when ``requests_per_minute=None``)."""
        return self.pacer.reads

    def __repr__(self) -> str:
        return f"OECClient(base_url={self.base_url!r}, api_key={mask_key(self._api_key)!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the sessions the client opened (never one the caller passed in)."""
        self._closed = True
        for sessions in (self._api_session, self._write_session, self._storage_session):
            await sessions.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this OECClient is closed")

    def _make_api_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _make_write_session(self) -> aiohttp.ClientSession:
        # A write goes on a connection of its own, never a pooled one: a pooled connection
        # the server closed while idle fails only once the request is written, and would be
        # taken for a POST that may have reached the server (which is never resent).
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_connections, force_close=True),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _make_storage_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections_per_host,
                ssl=self.ssl,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # bytes on disk must be the bytes the manifest hashed
            headers={"User-Agent": self.user_agent},
            read_bufsize=1024 * 1024,
        )

    async def _get_api_session(self, *, write: bool = False) -> aiohttp.ClientSession:
        self._check_open()
        if self._borrowed_session is not None:
            return check_borrowed_session(self._borrowed_session)
        return await (self._write_session if write else self._api_session).get()

    async def storage_session(self) -> aiohttp.ClientSession:
        """The session for presigned storage URLs: no auth, no cookies, no decompression.

        Its connector carries the global bound on storage connections (and per host).
        One is made per event loop, so a client serves successive ``asyncio.run()`` calls.
        """
        self._check_open()
        return await self._storage_session.get()

    # -- endpoints ---------------------------------------------------------------------

    async def _get_model(
        self,
        cls: type[T],
        path: str,
        params: dict[str, Any] | None = None,
        *,
        secret: bool = False,
        whole: Expect | None = None,
        each: Expect | None = None,
    ) -> T:
        """GET ``path`` as a ``cls``, checked against the question.

        ``whole`` and ``each`` say what the answer, or every entry of a listing answer,
        must hold (the id asked for, the environment listed, the status filtered on).

        Raises:
            InvalidResponseError: the body is not a ``cls``, or contradicts the question.
        """
        body = await self._transport.get_json(path, params, secret=secret)
        try:
            model = structure(body, cls)
        except Exception as exc:  # cattrs raises several kinds; all mean "not the schema"
            problem = f"unexpected response shape: {describe_error(exc)}"
        else:
            found = contradictions(model, whole=whole, each=each)
            if not found:
                return model
            problem = describe(found)
        # Raised outside the except block: no exception context (which could hold values
        # of the body) rides along with the error.
        raise InvalidResponseError(
            problem, status=200, body=None if secret else body, method="GET", path=path
        )

    async def list_backups(
        self,
        env_id: IdLike,
        status: BackupStatus | str | None = None,
        backup_type: BackupType | str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> BackupPage:
        """One page of an environment's backups, newest first."""
        env = coerce_uuid(env_id, "env_id")
        _check_page_args(page, page_size)
        filters = {
            "status": _filter_value(status, "status"),
            "backup_type": _filter_value(backup_type, "backup_type"),
        }
        asked = {name: value for name, value in filters.items() if value is not None}
        return await self._get_model(
            BackupPage,
            f"/environments/{env}/backups",
            {**filters, "page": page, "page_size": page_size},
            each={"environment_id": env, **asked},
        )

    async def iter_backups(
        self,
        env_id: IdLike,
        status: BackupStatus | str | None = None,
        backup_type: BackupType | str | None = None,
        *,
        page_size: int = 100,
    ) -> AsyncIterator[Backup]:
        """Every backup of an environment, newest first, across all pages.

        A backup that moves to the next page while we page (a new one was taken meanwhile)
        is yielded once, not twice.
        """
        env = coerce_uuid(env_id, "env_id")
        _check_page_args(1, page_size)
        seen: set[uuid.UUID] = set()
        page_number = 1
        while True:
            page = await self.list_backups(env, status, backup_type, page_number, page_size)
            for backup in page.items:
                if backup.id not in seen:
                    seen.add(backup.id)
                    yield backup
            if not page.items or len(page.items) < page.page_size:
                return
            if page_number >= page.total_pages:
                return
            page_number += 1

    async def get_backup(self, backup_id: IdLike) -> Backup:
        """One backup (with ``environment_snapshot``)."""
        backup = coerce_uuid(backup_id, "backup_id")
        return await self._get_model(Backup, f"/backups/{backup}", whole={"id": backup})

    async def latest_backup(self, env_id: IdLike) -> Backup | None:
        """The newest completed backup of an environment, or None if it has none."""
        page = await self.list_backups(env_id, status=BackupStatus.COMPLETED, page_size=1)
        return page.items[0] if page.items else None

    async def get_download_urls(self, backup_id: IdLike, expires_in: int = 3600) -> DownloadURLs:
        """Presigned URLs of a completed backup's files (any of them may be None).

        The URLs are secrets until they expire; :class:`DownloadURLs` hides them in repr.
        """
        backup = coerce_uuid(backup_id, "backup_id")
        check_expires_in(expires_in)
        return await self._get_model(
            DownloadURLs,
            f"/backups/{backup}/download",
            {"expires_in": expires_in},
            secret=True,
            whole={"backup_id": backup},
        )

    # -- downloads ---------------------------------------------------------------------

    async def download_backup(
        self,
        backup_or_id: Backup | IdLike,
        dest: str | PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        options: DownloadOptions | None = None,
        **option_overrides: Any,
    ) -> BackupDownload:
        """Download a backup's files into ``dest/<environment_id>/<backup_id>/``, verified.

        See :class:`~oec_async.download.DownloadOptions` for the knobs (``strict``,
        ``reverify``, ``expires_in``, ``min_free_space``, segmentation...), which can be
        given as an ``options`` object or as keyword arguments.
        """
        from oec_async.download.backup import download_backup  # noqa: PLC0415 - no cycle

        return await download_backup(
            self, backup_or_id, dest, progress=progress, options=options, **option_overrides
        )

    async def pull_latest(
        self,
        env_ids: Iterable[IdLike],
        dest: str | PathLike[str],
        *,
        concurrency: int = 4,
        progress: ProgressCallback | None = None,
        batch_progress: Callable[[BatchProgress], None] | None = None,
        options: DownloadOptions | None = None,
        **option_overrides: Any,
    ) -> list[PullResult]:
        """The newest completed backup of each environment, downloaded; failures isolated."""
        from oec_async.download.bulk import pull_latest  # noqa: PLC0415 - no cycle

        return await pull_latest(
            self,
            env_ids,
            dest,
            concurrency=concurrency,
            progress=progress,
            batch_progress=batch_progress,
            options=options,
            **option_overrides,
        )

    @property
    def api_requests_sent(self) -> int:
        """HTTP requests this client has sent to the API (attempts and redirects counted)."""
        return self._transport.request_count
