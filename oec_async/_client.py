"""``OECClient``: the platform's endpoints, and the entry points to the downloader.

Retries, pacing and error mapping live in ``_http.py``, paging in ``_paging.py``, waiting
for a backup in ``_waiting.py``; streaming to disk lives in ``download/``. This module
only says which path each call requests, what it sends, what its answer must hold and
what it returns.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
import ssl as ssl_module
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from os import PathLike
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from oec_async import _paging, _waiting
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
from oec_async._http import APIRequest, APITransport, origin
from oec_async._loops import LoopBoundSession, check_borrowed_session
from oec_async._ratelimit import Pacer, RateLimiter
from oec_async._redact import mask_key
from oec_async._retry import RetryPolicy
from oec_async._version import __version__
from oec_async.download import (
    BackupDownload,
    BatchProgress,
    DownloadOptions,
    ProgressCallback,
    PullResult,
    StorageSettings,
    download_backup,
    pull_latest,
)
from oec_async.errors import ConfigurationError, InvalidResponseError
from oec_async.models import (
    Backup,
    BackupPage,
    BackupProgress,
    BackupStatus,
    BackupType,
    CursorPage,
    DownloadURLs,
    Environment,
    EnvironmentStatus,
    Project,
    Task,
)

__all__ = ["OECClient"]

logger = logging.getLogger("oec_async")

T = TypeVar("T")
IdLike = uuid.UUID | str
#: Task ids go into a URL path: plain characters only.
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_MAX_NOTES = 10_000


def _filter_value(value: enum.Enum | str | None, name: str) -> str | None:
    """A status or type filter as sent: a member's value, or a non-empty string as is
    (an unknown value is the API's to judge)."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string")
    return value


def _check_page_args(page: int, page_size: int) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ConfigurationError(f"page must be an integer >= 1, got {page!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ConfigurationError(
            f"page_size must be an integer between 1 and 100, got {page_size!r}"
        )


def _check_task_id(task_id: object) -> str:
    if isinstance(task_id, uuid.UUID):
        return str(task_id)
    if isinstance(task_id, str) and _TASK_ID.match(task_id):
        return task_id
    raise ConfigurationError("task_id must be a UUID or a plain id ([A-Za-z0-9_.:-])")


class OECClient:
    """Async client of the OEC.sh public API: backups, discovery, on-demand backups.

    ::

        async with OECClient() as client:              # key from OEC_API_KEY
            async for env in client.iter_environments():
                latest = await client.latest_backup(env.id)
                if latest is not None:
                    await client.download_backup(latest, "backups/")

    Args:
        api_key: ``oec_live_ro_<token>`` or ``oec_live_rw_<token>``; defaults to the
            ``OEC_API_KEY`` environment variable. Its shape is checked locally.
        base_url: the API's base URL; defaults to ``OEC_BASE_URL``, then
            ``https://api.oec.sh/api/public/v1``. ``http://`` only to loopback hosts.
        timeout: seconds one API request (headers and body) may take; also the idle time
            after which a download stream that receives nothing counts as stalled (and is
            resumed). Never a total limit on a download.
        connect_timeout: seconds to establish a connection.
        max_retries: retries after the first attempt (0: exactly one request).
        max_retry_wait: the longest wait a server may ask for (``Retry-After``) that is
            still waited; a longer ask raises :class:`RateLimitError` at once.
        requests_per_minute: this client's read budget per ``rate_limit_period`` (100,
            under the platform's 120 reads a minute); None turns read pacing off. Several
            processes sharing one key share its budget: with N shards, give each
            ``requests_per_minute // N`` and ``budget_share=1/N``. ``X-RateLimit-Limit``
            answers can only lower it.
        writes_per_minute: the write budget (``create_backup``), 15 under the platform's
            20; None turns write pacing off.
        rate_limit_period: the length of the platform's rate-limit window in seconds (a
            calendar minute); tests and odd deployments change it.
        budget_share: this client's share of the key's budget (``1/N`` when N processes
            share one key): applied to the limit an ``X-RateLimit-Limit`` answer tells.
        max_connections: connections open at once, API and storage each.
        max_connections_per_host: storage requests in flight per host; the ranges of a
            file fetched in segments are its own (``segments``), within
            ``max_connections``.
        session: an ``aiohttp.ClientSession`` for API calls, made in the loop the client is
            used in; never closed by the client. Storage downloads always use a session
            of the client's own, without cookies or default headers, so nothing a caller
            configured can leak to a storage host.
        ssl: True (verify with the system's CAs), an ``ssl.SSLContext`` (a private CA),
            or False (no verification: never the default).
        user_agent: the ``User-Agent`` header; defaults to ``oec-async/<version>``.

    Raises:
        ConfigurationError: a missing or malformed key, an ``http://`` base URL to a host
            that is not loopback, or an argument of the wrong type or range (the message
            names it).

    One client may serve several ``asyncio.run()`` calls in turn: its sessions are made
    per event loop and closed as their loop ends.
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
        budget_share: float = 1.0,
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
        if (
            isinstance(budget_share, bool)
            or not isinstance(budget_share, int | float)
            or not 0 < budget_share <= 1
        ):
            raise ConfigurationError(
                f"budget_share must be a number in (0, 1], got {budget_share!r}"
            )
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
        self.pacer = Pacer(
            requests_per_minute, writes_per_minute, rate_limit_period, share=float(budget_share)
        )
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
            # The per-host bound is the downloader's (StorageSettings): a segmented
            # file's ranges are its own connections, bounded by ``segments``.
            connector=aiohttp.TCPConnector(limit=self.max_connections, ssl=self.ssl),
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

    @property
    def storage_settings(self) -> StorageSettings:
        """Timeouts and TLS of storage downloads (part of the downloader's
        :class:`~oec_async.download.BackupSource` interface)."""
        return StorageSettings(
            idle_timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            ssl=self.ssl,
            connections_per_host=self.max_connections_per_host,
        )

    def storage_headers(self, url: str) -> Mapping[str, str]:
        """The API's authorization for a download URL on the API's own origin (deployments
        with ``use_streaming``); nothing for any other host: the key never leaves the
        API's origin."""
        if origin(url) == origin(self.base_url):
            return {"Authorization": f"Bearer {self._api_key}"}
        return {}

    # -- endpoints: the one request path ------------------------------------------------

    async def _call(
        self,
        cls: type[T],
        request: APIRequest,
        *,
        whole: Expect | None = None,
        each: Expect | None = None,
    ) -> T:
        """Send ``request`` and read its answer as a ``cls``, checked against the question.

        ``whole`` and ``each`` say what the answer, or every entry of a listing answer,
        must hold (the id asked for, the environment listed, the status filtered on).

        Raises:
            InvalidResponseError: the body is not a ``cls``, or contradicts the question.
        """
        body = await self._transport.request(request)
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
            problem,
            status=200,
            body=None if request.secret else body,
            method=request.method,
            path=request.shown,
        )

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
        request = APIRequest(path, params=params or {}, secret=secret)
        return await self._call(cls, request, whole=whole, each=each)

    # -- backups (API.md section 2) --------------------------------------------------------

    async def list_backups(
        self,
        env_id: IdLike,
        status: BackupStatus | str | None = None,
        backup_type: BackupType | str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> BackupPage:
        """One page of an environment's backups, newest first.

        Args:
            env_id: the environment (``uuid.UUID`` or a UUID string).
            status: only backups of this status (an unknown one is sent as is).
            backup_type: only backups of this type.
            page: the page number, from 1.
            page_size: 1 to 100.

        Returns:
            The page; every backup on it is checked to be of that environment (and of the
            status and type asked for).

        Raises:
            ConfigurationError: a bad argument (nothing is sent).
            InvalidResponseError: the answer is not a page, or holds another
                environment's backup, or one of another status or type.
            APIError: the API refused (e.g. :class:`NotFoundError`).
        """
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
        is yielded once, not twice. Raises as :meth:`list_backups` does.
        """
        env = coerce_uuid(env_id, "env_id")
        _check_page_args(1, page_size)

        pages = _paging.by_page_number(
            lambda number: self.list_backups(env, status, backup_type, number, page_size)
        )
        async for backup in _paging.unique(_paging.entries(pages, lambda page: page.items)):
            yield backup

    async def get_backup(self, backup_id: IdLike) -> Backup:
        """One backup (with ``environment_snapshot``).

        Raises:
            ConfigurationError: ``backup_id`` is not a UUID.
            NotFoundError: no such backup (or one of another organisation).
            InvalidResponseError: the answer is about another backup.
        """
        backup = coerce_uuid(backup_id, "backup_id")
        return await self._get_model(Backup, f"/backups/{backup}", whole={"id": backup})

    async def latest_backup(self, env_id: IdLike) -> Backup | None:
        """The newest completed backup of an environment, or None if it has none.

        Raises as :meth:`list_backups` does (an answer of another environment, or a
        backup that is not completed, is an :class:`InvalidResponseError`).
        """
        page = await self.list_backups(env_id, status=BackupStatus.COMPLETED, page_size=1)
        return page.items[0] if page.items else None

    async def get_download_urls(self, backup_id: IdLike, expires_in: int = 3600) -> DownloadURLs:
        """Presigned URLs of a completed backup's files (any of them may be None).

        The URLs are secrets until they expire: :class:`DownloadURLs` hides them in its
        repr, and no error raised for this request keeps or quotes its body.

        Args:
            backup_id: the backup.
            expires_in: how long the URLs stay valid, 300 to 86400 seconds.

        Raises:
            ConfigurationError: a bad argument (nothing is sent).
            BadRequestError: the backup is not completed.
            InvalidResponseError: the answer is malformed, or for another backup.
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

    # -- discovery (API.md section 8) ------------------------------------------------------

    async def iter_projects(self, *, page_size: int = 100) -> AsyncIterator[Project]:
        """Every project the key sees, across every cursor page (a project-scoped key
        sees its one project).

        Args:
            page_size: projects per page (``limit``), 1 to 100.

        Raises:
            InvalidResponseError: a page is malformed, or says there is more without a
                new cursor (stopping would silently leave projects out).
            APIError: the API refused.
        """
        limit = check_count(page_size, "page_size", minimum=1)
        if limit > 100:
            raise ConfigurationError(f"page_size must be between 1 and 100, got {limit}")

        def fetch(cursor: str | None) -> Awaitable[CursorPage[Project]]:
            return self._get_model(
                CursorPage[Project], "/projects", {"limit": limit, "cursor": cursor}
            )

        pages = _paging.by_cursor(fetch, what="projects", path="/projects")
        async for project in _paging.unique(_paging.entries(pages, lambda page: page.data)):
            yield project

    async def get_project(self, project_id: IdLike) -> Project:
        """One project.

        Raises:
            ConfigurationError: ``project_id`` is not a UUID.
            NotFoundError: no such project, or not one the key sees.
            InvalidResponseError: the answer is about another project.
        """
        project = coerce_uuid(project_id, "project_id")
        return await self._get_model(Project, f"/projects/{project}", whole={"id": project})

    async def list_environments(
        self, project_id: IdLike, status: EnvironmentStatus | str | None = None
    ) -> list[Environment]:
        """A project's environments, the whole list in one answer (a plain JSON array).

        Args:
            project_id: the project.
            status: only environments of this status (an unknown one is sent as is).

        Returns:
            The environments; each is checked to belong to the project (when it says)
            and to have the status asked for (when it has one).

        Raises:
            ConfigurationError: a bad argument (nothing is sent).
            NotFoundError: no such project.
            InvalidResponseError: not an array of environments, or one of another
                project or status.
        """
        project = coerce_uuid(project_id, "project_id")
        wanted = _filter_value(status, "status")
        asked = {"status": wanted} if wanted is not None else {}
        return await self._get_model(
            list[Environment],
            f"/projects/{project}/environments",
            {"status": wanted},
            each={"project_id": project, **asked},
        )

    async def get_environment(self, env_id: IdLike) -> Environment:
        """One environment. A deleted environment answers 404 while its backups stay
        readable through :meth:`list_backups`.

        Raises:
            ConfigurationError: ``env_id`` is not a UUID.
            NotFoundError: no such environment (or a deleted one).
            InvalidResponseError: the answer is about another environment.
        """
        env = coerce_uuid(env_id, "env_id")
        return await self._get_model(Environment, f"/environments/{env}", whole={"id": env})

    async def iter_environments(
        self,
        project_ids: Iterable[IdLike] | None = None,
        status: EnvironmentStatus | str | None = None,
    ) -> AsyncIterator[Environment]:
        """Every environment of the given projects, or of every project the key sees:
        each once, project by project.

        Args:
            project_ids: the projects to list (None: all of :meth:`iter_projects`).
            status: only environments of this status.

        Raises:
            ConfigurationError: a project id that is not a UUID, or a bad status (before
                anything is sent).
            APIError: as :meth:`iter_projects` and :meth:`list_environments`.
        """
        _filter_value(status, "status")
        chosen = (
            [coerce_uuid(p, "project_ids") for p in project_ids]
            if project_ids is not None
            else None
        )

        async def every_project() -> AsyncIterator[uuid.UUID]:
            if chosen is not None:
                for project in dict.fromkeys(chosen):
                    yield project
            else:
                async for found in self.iter_projects():
                    yield found.id

        async def environments() -> AsyncIterator[Environment]:
            async for project in every_project():
                for env in await self.list_environments(project, status):
                    yield env

        async for env in _paging.unique(environments()):
            yield env

    # -- on-demand backups (API.md section 10) ---------------------------------------------

    async def create_backup(
        self,
        env_id: IdLike,
        *,
        include_filestore: bool = True,
        retention_type: str | None = None,
        notes: str | None = None,
        backup_type: BackupType | str = BackupType.MANUAL,
    ) -> Backup:
        """Ask the platform to take a backup of an environment now: one POST, sent once.

        The POST takes no idempotency key, and a second backup is not free: it is never
        resent once it may have reached the server. It is retried only when the server
        refused without acting (429, paced as a write) or the connection could not be
        made; a timeout, a dropped connection or a gateway's 5xx after sending raise, and
        the error says how to check whether the backup was created.

        ::

            backup = await client.create_backup(env_id, notes="before the upgrade")
            backup = await client.wait_for_backup(backup)      # the completed Backup

        Args:
            env_id: the environment.
            include_filestore: back up the filestore too (else the database only).
            retention_type: the platform's retention class for it (None: its default).
            notes: a note kept with the backup.
            backup_type: ``"manual"`` unless the platform says otherwise.

        Returns:
            The new backup (status ``pending``), with the ``task_id`` that runs it.

        Raises:
            PermissionDeniedError: a read-only key (``oec_live_ro_``), refused locally
                before any request; or the server's 403 ``read_only_key``.
            ConflictError: a backup of the environment is running (``.backup_id`` names
                it when the server says).
            APIConnectionError: no answer after the POST was sent: the backup may exist.
            ConfigurationError: a bad argument (nothing is sent).
        """
        env = coerce_uuid(env_id, "env_id")
        if not isinstance(include_filestore, bool):
            raise ConfigurationError("include_filestore must be True or False")
        retention = check_text(retention_type, "retention_type")
        if notes is not None and (not isinstance(notes, str) or len(notes) > _MAX_NOTES):
            raise ConfigurationError(f"notes must be a string of at most {_MAX_NOTES} characters")
        kind = _filter_value(backup_type, "backup_type")
        request = APIRequest(
            f"/environments/{env}/backups",
            method="POST",
            json={
                "backup_type": kind,
                "include_filestore": include_filestore,
                "retention_type": retention,
                "notes": notes,
            },
            unsure=(
                f"the backup may have been created: check with list_backups({env}, "
                f"backup_type={kind!r}) (or `oec-backups list {env}`) before asking again; "
                "it is not asked again automatically"
            ),
        )
        return await self._call(Backup, request, whole={"environment_id": env})

    async def get_task(self, task_id: str | uuid.UUID) -> Task:
        """The platform task behind an on-demand backup (``Backup.task_id``).

        Raises:
            ConfigurationError: ``task_id`` is not a plain id.
            NotFoundError: no such task (tasks may be purged after a while).
            InvalidResponseError: the answer is about another task.
        """
        task = _check_task_id(task_id)
        return await self._get_model(Task, f"/deployments/{task}", whole={"id": task})

    def watch_backup(
        self,
        backup_or_id: Backup | IdLike,
        *,
        timeout: float = 3600.0,
        poll_interval: float | None = None,
    ) -> AsyncIterator[BackupProgress]:
        """The states of a backup being taken, one per poll, until it completes::

            async for state in client.watch_backup(backup):
                print(f"{state.percent or 0:3.0f}% {state.step or state.status}")

        Polls the backup's task while it runs (progress and current step), then the
        backup. The pace is the platform's own client's (every 5 s for the first 30 s,
        then every 10 s, in minutes of ``rate_limit_period``), and never more than a
        fifth of the read budget, whatever ``poll_interval`` asks. A poll that fails
        after the transport's retries (5xx, no connection) is logged and the wait goes on.

        Args:
            backup_or_id: the backup (as :meth:`create_backup` returned it) or its id.
            timeout: seconds to wait at most.
            poll_interval: seconds between polls instead of the schedule (still at least
                the fifth-of-budget interval).

        Yields:
            :class:`BackupProgress` snapshots; the last one's backup is completed.

        Raises:
            BackupFailedError: the backup (or its task) ended failed, cancelled or
                expired; ``.backup`` as last seen.
            WaitTimeoutError: ``timeout`` passed; ``.backup`` as last seen.
            ConfigurationError: a bad argument.
        """
        backup = backup_or_id if isinstance(backup_or_id, Backup) else None
        backup_id = backup.id if backup is not None else coerce_uuid(backup_or_id, "backup_or_id")
        give_up_after = check_seconds(timeout, "timeout", allow_zero=True)
        asked = None if poll_interval is None else check_seconds(poll_interval, "poll_interval")
        per_request = self.pacer.share_interval(_waiting.BUDGET_SHARE)

        def interval(elapsed: float, requests: int) -> float:
            return _waiting.poll_interval(
                elapsed,
                period=self.pacer.period,
                per_request=per_request,
                requests=requests,
                asked=asked,
            )

        return _waiting.watch(
            self,
            backup,
            backup_id,
            give_up_after=give_up_after,
            interval=interval,
            least=functools.partial(_waiting.budget_floor, per_request),
        )

    async def wait_for_backup(
        self,
        backup_or_id: Backup | IdLike,
        *,
        timeout: float = 3600.0,  # noqa: ASYNC109 - the contract's name (API.md section 10)
        poll_interval: float | None = None,
        progress: Callable[[BackupProgress], None] | None = None,
    ) -> Backup:
        """Wait until a backup is completed, and return it. Polls as :meth:`watch_backup`
        does, handing each state to ``progress`` when given.

        Args:
            backup_or_id: the backup (as :meth:`create_backup` returned it) or its id.
            timeout: seconds to wait at most (default an hour).
            poll_interval: seconds between polls instead of the schedule.
            progress: called with every :class:`BackupProgress` (for a progress line).

        Returns:
            The completed :class:`Backup`.

        Raises:
            BackupFailedError: it ended failed, cancelled or expired (``.backup``).
            WaitTimeoutError: ``timeout`` passed (``.backup`` as last seen).
        """
        last: Backup | None = None
        async for state in self.watch_backup(
            backup_or_id, timeout=timeout, poll_interval=poll_interval
        ):
            last = state.backup
            if progress is not None:
                progress(state)
        assert last is not None  # noqa: S101 - watch ends only after a completed state
        return last

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
