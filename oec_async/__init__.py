"""oec_async: asyncio SDK and verified, resumable downloader for OEC.sh backups.

::

    from oec_async import OECClient

    async with OECClient() as client:            # key from OEC_API_KEY
        latest = await client.latest_backup(env_id)
        result = await client.download_backup(latest, "backups/")
"""

import logging

from oec_async._client import OECClient
from oec_async._version import __version__
from oec_async.archive import (
    BackupFolder,
    EnvironmentStatus,
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
from oec_async.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
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
)
from oec_async.models import Backup, BackupPage, BackupStatus, BackupType, DownloadURLs

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "Backup",
    "BackupDownload",
    "BackupFolder",
    "BackupPage",
    "BackupStatus",
    "BackupType",
    "BadRequestError",
    "BatchProgress",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "DownloadLockedError",
    "DownloadOptions",
    "DownloadURLs",
    "DownloadedFile",
    "EnvironmentStatus",
    "InsufficientSpaceError",
    "IntegrityError",
    "InvalidResponseError",
    "ManifestError",
    "NoCompletedBackupError",
    "NotFoundError",
    "OECClient",
    "OECError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProgressEvent",
    "PruneResult",
    "PullResult",
    "RateLimitError",
    "RetentionPolicy",
    "ServerError",
    "StorageError",
    "UnprocessableEntityError",
    "VerifyResult",
    "__version__",
    "archive_status",
    "inventory",
    "plan_retention",
    "prune",
    "verify_archive",
]

# A library logs, an application decides where logs go (and nothing prints by default).
logging.getLogger("oec_async").addHandler(logging.NullHandler())
