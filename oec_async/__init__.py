"""oec_async: asyncio SDK and verified, resumable downloader for OEC.sh backups.

::

    from oec_async import OECClient

    async with OECClient() as client:            # key from OEC_API_KEY
        latest = await client.latest_backup(env_id)
        result = await client.download_backup(latest, "backups/")
"""

import importlib
import logging
from typing import TYPE_CHECKING

from oec_async._shard import shard_of
from oec_async._version import __version__
from oec_async.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    DownloadLockedError,
    InsufficientSpaceError,
    IntegrityError,
    InvalidResponseError,
    ManifestError,
    NoCompletedBackupError,
    NotFoundError,
    OECError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StorageError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
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
    Pagination,
    Project,
    Task,
    TaskStatus,
)

if TYPE_CHECKING:  # imported on first use (below), so that errors and models load fast
    from oec_async import download as download
    from oec_async._client import OECClient
    from oec_async.archive import (
        BackupFolder,
        EnvironmentSummary,
        PruneResult,
        RetentionPolicy,
        VerifyResult,
        archive_status,
        inventory,
        plan_retention,
        prune,
        verify_archive,
    )
    from oec_async.download import (
        BackupDownload,
        BatchProgress,
        DownloadedFile,
        DownloadOptions,
        ProgressEvent,
        PullResult,
    )

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "Backup",
    "BackupDownload",
    "BackupFailedError",
    "BackupFolder",
    "BackupPage",
    "BackupProgress",
    "BackupStatus",
    "BackupType",
    "BadRequestError",
    "BatchProgress",
    "ConfigurationError",
    "ConflictError",
    "CursorPage",
    "DownloadError",
    "DownloadLockedError",
    "DownloadOptions",
    "DownloadURLs",
    "DownloadedFile",
    "Environment",
    "EnvironmentStatus",
    "EnvironmentSummary",
    "InsufficientSpaceError",
    "IntegrityError",
    "InvalidResponseError",
    "ManifestError",
    "NoCompletedBackupError",
    "NotFoundError",
    "OECClient",
    "OECError",
    "Pagination",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProgressEvent",
    "Project",
    "PruneResult",
    "PullResult",
    "RateLimitError",
    "RetentionPolicy",
    "ServerError",
    "StorageError",
    "Task",
    "TaskStatus",
    "UnprocessableEntityError",
    "VerifyResult",
    "WaitTimeoutError",
    "__version__",
    "archive_status",
    "inventory",
    "plan_retention",
    "prune",
    "shard_of",
    "verify_archive",
]

# The client and the downloader pull in aiohttp (most of the import time): they are
# imported when first used, ``from oec_async import OECClient`` included (PEP 562).
# Type checkers see the imports above instead, and no __getattr__ that would hide typos.
_LAZY = {
    "OECClient": "oec_async._client",
    "BackupDownload": "oec_async.download",
    "BatchProgress": "oec_async.download",
    "DownloadOptions": "oec_async.download",
    "DownloadedFile": "oec_async.download",
    "ProgressEvent": "oec_async.download",
    "PullResult": "oec_async.download",
    "download": None,  # the subpackage itself
    **dict.fromkeys(
        (
            "BackupFolder",
            "EnvironmentSummary",
            "PruneResult",
            "RetentionPolicy",
            "VerifyResult",
            "archive_status",
            "inventory",
            "plan_retention",
            "prune",
            "verify_archive",
        ),
        "oec_async.archive",
    ),
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a lazily exported name (or the ``download`` subpackage) on first use."""
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = _LAZY[name]
        if module is None:
            return importlib.import_module(f"{__name__}.{name}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    """Every name, the lazily imported ones included (before they are first used)."""
    return sorted({*globals(), *__all__, *_LAZY})


# A library logs, an application decides where logs go (and nothing prints by default).
logging.getLogger("oec_async").addHandler(logging.NullHandler())
