"""Exit statuses of ``oec-backups``, and the exception that ends a command with status 1.

0 everything succeeded, 1 something failed (each failure already printed as one line),
2 usage error (bad arguments, malformed key, http base URL...), 130 interrupted.
"""

from __future__ import annotations

import asyncio

from oec_async.errors import ConfigurationError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Failed",
    "exit_status_of",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Failed(Exception):
    """A command finished, but not everything succeeded (exit 1, already reported)."""


def exit_status_of(error: BaseException | None) -> int:
    """The status ``oec-backups`` exits with when a command ends with ``error``."""
    if error is None:
        return EXIT_OK
    if isinstance(error, ConfigurationError):
        return EXIT_USAGE
    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return EXIT_INTERRUPTED
    return EXIT_FAILED
