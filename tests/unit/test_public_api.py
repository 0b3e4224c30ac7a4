"""What users import: every name API.md promises, from the top-level package."""

from __future__ import annotations

import uuid

import oec_async
from oec_async import NotFoundError
from oec_async.cli._render import short_error

PROMISED = {
    # API.md section 2: the client, the models and every error.
    "OECClient",
    "Backup",
    "BackupPage",
    "DownloadURLs",
    "BackupStatus",
    "BackupType",
    "OECError",
    "ConfigurationError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "ServerError",
    "APIConnectionError",
    "APITimeoutError",
    "DownloadError",
    "IntegrityError",
    "InsufficientSpaceError",
    # Sections 3 and 5: what download_backup and pull_latest return.
    "BackupDownload",
    "DownloadedFile",
    "PullResult",
    # Added by this SDK, used in its signatures.
    "BatchProgress",
    "DownloadOptions",
    "ProgressEvent",
    "NoCompletedBackupError",
    # Section 11: the local archive, for apps that do what verify/status/prune do.
    "verify_archive",
    "VerifyResult",
    "inventory",
    "archive_status",
    "BackupFolder",
    "EnvironmentSummary",
    "plan_retention",
    "RetentionPolicy",
    "prune",
    "PruneResult",
}


def test_every_promised_name_is_exported_from_the_package() -> None:
    assert set(oec_async.__all__) >= PROMISED
    for name in oec_async.__all__:
        assert getattr(oec_async, name) is not None, name


def test_every_exported_error_is_an_oec_error() -> None:
    for name in oec_async.__all__:
        value = getattr(oec_async, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, oec_async.OECError), name


def test_summary_cell_shows_the_servers_reason_not_the_path() -> None:
    env = uuid.uuid4()
    error = NotFoundError(
        "Environment not found", status=404, method="GET", path=f"/environments/{env}/backups"
    )

    cell = short_error(error)

    assert cell == "NotFoundError: Environment not found"
    assert len(short_error(RuntimeError("x" * 500))) == 70
