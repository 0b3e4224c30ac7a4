"""Presigned URLs that stay valid for the whole download.

One :class:`URLSource` per backup download. Transfers ask it for their artifact's URL
before each request: a URL close to expiry is renewed first (proactively), and a transfer
that storage refused as expired asks for a refresh. Concurrent refresh requests for the
same generation of URLs are served by a single API call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

from oec_async.errors import StorageError
from oec_async.models import DownloadURLs

if TYPE_CHECKING:
    from oec_async.download._source import BackupSource

__all__ = ["URLSource", "url_of"]

logger = logging.getLogger("oec_async.download")

_URL_FIELDS = {"database": "database_url", "filestore": "filestore_url", "manifest": "manifest_url"}


def url_of(urls: DownloadURLs, artifact: str) -> str | None:
    """The artifact's URL in a set of download URLs (None: the backup has no such file)."""
    value: str | None = getattr(urls, _URL_FIELDS[artifact])
    return value


class URLSource:
    """The current presigned URLs of one backup, renewed before and after they expire."""

    def __init__(
        self,
        source: BackupSource,
        backup_id: uuid.UUID,
        *,
        expires_in: int,
        refresh_margin: float = 60.0,
    ) -> None:
        self._source = source
        self.backup_id = backup_id
        self.expires_in = expires_in
        self.refresh_margin = refresh_margin
        self.generation = 0
        self.refreshes = 0
        self._urls: DownloadURLs | None = None
        self._deadline = 0.0
        self._margin = 0.0
        self._lock = asyncio.Lock()

    async def fetch(self) -> DownloadURLs:
        """The first set of URLs (one API call)."""
        async with self._lock:
            return self._urls if self._urls is not None else await self._renew()

    async def _renew(self) -> DownloadURLs:
        requested = time.monotonic()
        urls = await self._source.get_download_urls(self.backup_id, expires_in=self.expires_in)
        # Deadline from our own clock and the TTL the API granted: immune to clock skew.
        ttl = urls.expires_in if urls.expires_in is not None else self.expires_in
        self._deadline = requested + ttl
        self._margin = min(self.refresh_margin, ttl * 0.1)
        self._urls = urls
        self.generation += 1
        return urls

    async def get(self, artifact: str) -> tuple[str, int]:
        """``(url, generation)`` for an artifact, renewed first if it is about to expire."""
        async with self._lock:
            urls = self._urls
            if urls is None or time.monotonic() >= self._deadline - self._margin:
                if urls is not None:
                    logger.debug("%s: presigned URLs expire soon, renewing", self.backup_id)
                    self.refreshes += 1
                urls = await self._renew()
            url = url_of(urls, artifact)
            if url is None:
                raise StorageError(
                    "the API no longer returns a URL for this file", artifact=artifact
                )
            return url, self.generation

    async def refresh(self, seen_generation: int) -> None:
        """Storage refused a URL of ``seen_generation`` as expired: get new ones (once)."""
        async with self._lock:
            if self.generation == seen_generation:
                logger.info("%s: storage refused an expired URL, renewing", self.backup_id)
                self.refreshes += 1
                await self._renew()
