"""What the downloader needs from the API, as a small interface.

The downloader never imports the client: :class:`~oec_async.OECClient` satisfies
:class:`BackupSource`, and tests or other front ends may pass anything else that does.
Arrows point one way: client -> downloader -> disk.
"""

from __future__ import annotations

import ssl as ssl_module
import uuid
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import attrs

from oec_async.models import Backup, DownloadURLs

__all__ = ["BackupSource", "StorageSettings"]


@attrs.frozen
class StorageSettings:
    """How storage is reached: the session's timeouts and TLS."""

    #: A stream that receives no byte for this long counts as stalled (and is resumed).
    idle_timeout: float
    connect_timeout: float
    ssl: ssl_module.SSLContext | bool = True
    #: Requests in flight per host (None: the session's connector bounds them). The extra
    #: connections of a segmented file are not counted: they are the file's own.
    connections_per_host: int | None = None


class BackupSource(Protocol):
    """The three API calls and the storage settings a download needs."""

    async def get_backup(self, backup_id: uuid.UUID | str) -> Backup:
        """One backup, by id."""
        ...

    async def latest_backup(self, env_id: uuid.UUID | str) -> Backup | None:
        """The newest completed backup of an environment, or None."""
        ...

    async def get_download_urls(
        self, backup_id: uuid.UUID | str, expires_in: int = 3600
    ) -> DownloadURLs:
        """Fresh presigned URLs of a backup's files."""
        ...

    async def storage_session(self) -> aiohttp.ClientSession:
        """The session for storage requests (no auth, no cookies, no decompression)."""
        ...

    @property
    def storage_settings(self) -> StorageSettings:
        """Timeouts and TLS for storage requests."""
        ...

    def storage_headers(self, url: str) -> Mapping[str, str]:
        """Extra headers for a download URL: the API's authorization when the URL is on
        the API's own origin (``use_streaming`` deployments), nothing for storage."""
        ...
