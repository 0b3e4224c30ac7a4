"""Exit statuses of ``oec-backups``: what a cron wrapper, a CI job or a Kubernetes
``podFailurePolicy`` acts on.

======  ====================================================================================
status  meaning
======  ====================================================================================
0       everything asked for succeeded
1       something failed that running again will not fix: integrity, 404, a backup that
        failed, no space, an environment without backup with ``--fail-on-no-backup``...
2       usage error: bad arguments, a malformed key, an unreadable ``--from-file``...
3       the key was refused: 401 (invalid or expired), 402 (subscription), 403 (scope, a
        read-only key asked to take a backup)
75      something failed that a retry may fix (``EX_TEMPFAIL``): network, timeout, 5xx,
        429, a lock held by another process, a backup still running
130     interrupted (Ctrl-C): partial downloads kept
143     terminated (SIGTERM): partial downloads kept
======  ====================================================================================

When several things failed, one that a retry may fix makes the run retryable (75): a
retry re-fetches nothing already complete, and whatever fails for good fails again with
1 or 3. The order is 75, then 3, then 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from oec_async.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DownloadLockedError,
    InvalidResponseError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StorageError,
    WaitTimeoutError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_RETRYABLE",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "PERMANENT_EXIT_STATUSES",
    "Failed",
    "Kind",
    "exit_status_for",
    "exit_status_of",
    "kind_of",
    "termination",
    "worst",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_RETRYABLE = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: What a ``podFailurePolicy`` should not retry (``FailIndex``).
PERMANENT_EXIT_STATUSES = (EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED)

#: ``retryable``: a later attempt may succeed; ``refused``: the key is not allowed;
#: ``permanent``: anything else that failed; ``usage``: the command line is wrong.
Kind = Literal["retryable", "refused", "permanent", "usage"]

_RETRYABLE = (
    APIConnectionError,  # DNS, refused, reset, TLS, timeouts
    ServerError,
    RateLimitError,
    ConflictError,  # a backup of the environment is running now
    DownloadLockedError,  # another process is downloading the same backup
    WaitTimeoutError,  # the backup goes on on the platform
    InvalidResponseError,  # mostly a proxy's error page in place of the API's JSON
)
_REFUSED = (AuthenticationError, PaymentRequiredError, PermissionDeniedError)
_STATUS_OF: dict[Kind, int] = {
    "retryable": EXIT_RETRYABLE,
    "refused": EXIT_REFUSED,
    "permanent": EXIT_FAILED,
    "usage": EXIT_USAGE,
}


class Failed(Exception):
    """A command finished, but not everything succeeded (already reported on stderr).

    Args:
        status: the exit status (:data:`EXIT_FAILED` unless a retry may help, etc.).
    """

    def __init__(self, status: int = EXIT_FAILED) -> None:
        self.status = status
        super().__init__(f"exit status {status}")


def kind_of(error: BaseException) -> Kind:
    """Whether running again may fix ``error`` (a pure decision, by the error's class)."""
    if isinstance(error, ConfigurationError):
        return "usage"
    if isinstance(error, _REFUSED):
        return "refused"
    if isinstance(error, StorageError):  # storage kept answering with an error
        return "retryable" if error.status is None or error.status >= 500 else "permanent"
    if isinstance(error, _RETRYABLE):
        return "retryable"
    return "permanent"


#: Which status a run with several kinds of failure exits with: the first present.
_PRECEDENCE = (EXIT_USAGE, EXIT_RETRYABLE, EXIT_REFUSED, EXIT_FAILED)


def worst(*statuses: int) -> int:
    """The status of a run whose parts ended with ``statuses`` (see :data:`_PRECEDENCE`;
    any other non-zero status goes first)."""
    failed = [s for s in statuses if s != EXIT_OK]
    others = [s for s in failed if s not in _PRECEDENCE]  # interrupted, terminated
    ranked = [s for s in _PRECEDENCE if s in failed]
    return (others + ranked + [EXIT_OK])[0]


def exit_status_for(errors: Iterable[BaseException]) -> int:
    """The exit status of a run that ended with these failures (0 for none)."""
    return worst(*(_STATUS_OF[kind_of(error)] for error in errors))


class _Termination:
    """Whether SIGTERM ended the command (set by the signal handler in ``_app``): a
    cancelled command then exits 143, not 130. One per process, like the signal."""

    def __init__(self) -> None:
        self.requested = False


termination = _Termination()


def exit_status_of(error: BaseException | None) -> int:
    """The status ``oec-backups`` exits with when a command ends with ``error``."""
    if error is None:
        return EXIT_OK
    if isinstance(error, Failed):
        return error.status
    import asyncio  # noqa: PLC0415 - not for --help

    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return EXIT_TERMINATED if termination.requested else EXIT_INTERRUPTED
    return _STATUS_OF[kind_of(error)]
