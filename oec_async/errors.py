"""The exception tree of oec_async.

::

    OECError
    ├── ConfigurationError          bad key format, http base URL, bad argument
    ├── APIError                    .status .code .message .body
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401: invalid_key, key_expired, missing_auth
    │   ├── PaymentRequiredError    402: subscription_blocked
    │   ├── PermissionDeniedError   403, e.g. read_only_key
    │   ├── NotFoundError           404
    │   ├── ConflictError           409 .backup_id (a backup is already running)
    │   ├── UnprocessableEntityError  422
    │   ├── RateLimitError          429 .retry_after (rate_limit_exceeded, ip_blocked)
    │   ├── ServerError             5xx
    │   └── InvalidResponseError    an answer that is not what the API documents, or not
    │                               about what was asked
    ├── APIConnectionError          no HTTP answer: DNS, refused, reset, TLS
    │   └── APITimeoutError         connect or answer took longer than ``timeout``
    ├── NoCompletedBackupError      an environment has no completed backup to pull
    ├── DownloadError               .artifact
    │   ├── IntegrityError          size or checksum differs from the manifest
    │   ├── InsufficientSpaceError  not enough free disk for what is left to fetch
    │   ├── ManifestError           the manifest is missing, unreadable or hostile
    │   ├── StorageError            storage answered with an error we cannot get past
    │   └── DownloadLockedError     another process is downloading into the same folder
    ├── BackupFailedError           .backup: a backup waited for ended failed/cancelled/expired
    └── WaitTimeoutError            .backup: waiting for a backup took longer than asked

Every message names the method and the API path (or the artifact), never the API key and
never a presigned URL's query string: messages end up in cron mails and CI logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid

    from oec_async.models import Backup

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BackupFailedError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "DownloadLockedError",
    "InsufficientSpaceError",
    "IntegrityError",
    "InvalidResponseError",
    "ManifestError",
    "NoCompletedBackupError",
    "NotFoundError",
    "OECError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
]


def _rebuild(cls: type[OECError], args: tuple[Any, ...], state: dict[str, Any]) -> OECError:
    exc = cls.__new__(cls, *args)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class OECError(Exception):
    """Base class of every error raised by oec_async."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take keyword-only arguments, which the default reduction
        # (``cls(*args)``) cannot supply: without this, pickling (multiprocessing,
        # concurrent.futures) and copy.copy of an error raise TypeError.
        return (_rebuild, (type(self), self.args, self.__dict__))


class ConfigurationError(OECError, ValueError):
    """A bad argument, caught locally before any request is sent."""


class APIError(OECError):
    """The API answered with an error status.

    ``code`` and ``message`` are read from whichever error-body shape the platform sent;
    ``body`` is the parsed JSON body (or the raw text when it was not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        body: Any = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method and path else ""
        code_part = f" [{code}]" if code else ""
        super().__init__(f"{where}HTTP {status}{code_part}: {message}")


class BadRequestError(APIError):
    """400: e.g. download URLs asked for a backup that is not completed."""


class AuthenticationError(APIError):
    """401: ``invalid_key``, ``key_expired`` or ``missing_auth``."""


class PaymentRequiredError(APIError):
    """402: ``subscription_blocked``."""


class PermissionDeniedError(APIError):
    """403: the key's scope does not allow this call."""


class NotFoundError(APIError):
    """404: unknown id, or an id of another organisation."""


class ConflictError(APIError):
    """409: e.g. a backup of that environment is already running.

    ``backup_id`` is the running backup's id when the body names it (else None).
    """

    def __init__(self, message: str, *, backup_id: uuid.UUID | None = None, **kwargs: Any) -> None:
        self.backup_id = backup_id
        super().__init__(message, **kwargs)


class UnprocessableEntityError(APIError):
    """422: the API rejected a parameter."""


class RateLimitError(APIError):
    """429: ``rate_limit_exceeded`` or ``ip_blocked``.

    Raised when retries are exhausted or when the server asks for a longer wait than the
    client's cap; ``retry_after`` is the wait the server asked for, in seconds, if known.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIError):
    """5xx."""


class InvalidResponseError(APIError):
    """The API answered, but not with the JSON it documents (an HTML page from a proxy,
    a truncated body, a missing required field, an oversized body)."""


class APIConnectionError(OECError):
    """The request never got an HTTP answer: DNS, refused connection, reset, TLS."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connect or read)."""


class NoCompletedBackupError(OECError):
    """``pull_latest`` found no completed backup for an environment."""

    def __init__(self, environment_id: object) -> None:
        self.environment_id = environment_id
        super().__init__(f"environment {environment_id} has no completed backup")


class DownloadError(OECError):
    """A backup artifact could not be downloaded; partial work stays on disk for a resume."""

    def __init__(self, message: str, *, artifact: str | None = None) -> None:
        self.artifact = artifact
        super().__init__(f"{artifact}: {message}" if artifact else message)


class IntegrityError(DownloadError):
    """The bytes received differ from the manifest (size or checksum), twice in a row."""


class InsufficientSpaceError(DownloadError):
    """Not enough free disk space for what is left to fetch (or ENOSPC while writing)."""

    def __init__(
        self,
        message: str,
        *,
        artifact: str | None = None,
        needed: int | None = None,
        available: int | None = None,
    ) -> None:
        self.needed = needed
        self.available = available
        super().__init__(message, artifact=artifact)


class ManifestError(DownloadError):
    """The manifest could not be read, or names a file outside the backup folder."""


class StorageError(DownloadError):
    """Storage kept answering with an error (after URL refreshes and retries)."""

    def __init__(self, message: str, *, artifact: str | None = None, status: int | None = None):
        self.status = status
        super().__init__(message, artifact=artifact)


class DownloadLockedError(DownloadError):
    """Another process (or task) holds the lock on this backup's download folder."""


class BackupFailedError(OECError):
    """A backup waited for ended without a usable result (failed, cancelled or expired).

    ``backup`` is the backup as the API last described it (its ``error_message`` says why,
    when the platform says).
    """

    def __init__(self, message: str, *, backup: Backup) -> None:
        self.backup = backup
        super().__init__(message)


class WaitTimeoutError(OECError):
    """Waiting for a backup took longer than the ``timeout`` asked for.

    The backup goes on on the platform; ``backup`` is how it was last seen (None if no
    poll got an answer), to wait again with :meth:`OECClient.wait_for_backup` or to check
    later.
    """

    def __init__(self, message: str, *, backup: Backup | None) -> None:
        self.backup = backup
        super().__init__(message)
