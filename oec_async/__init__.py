"""oec_async: asyncio SDK and verified, resumable downloader for OEC.sh backups.

::

    from oec_async import OECClient

    async with OECClient() as client:            # key from OEC_API_KEY
        latest = await client.latest_backup(env_id)
        result = await client.download_backup(latest, "backups/")
"""

import logging

from oec_async._client import OECClient
from oec_async._shard import shard_of
from oec_async._version import __version__
from oec_async.download import (
    BackupDownload,
    BatchProgress,
    DownloadedFile,
    DownloadOptions,
    ProgressEvent,
    PullResult,
)
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

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "Backup",
    "BackupDownload",
    "BackupFailedError",
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
    "PullResult",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "Task",
    "TaskStatus",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "__version__",
    "shard_of",
]

# A library logs, an application decides where logs go (and nothing prints by default).
logging.getLogger("oec_async").addHandler(logging.NullHandler())
