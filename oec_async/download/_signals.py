"""How the steps of a transfer tell the retry engine what to do next (internal)."""

from __future__ import annotations

__all__ = ["Expired", "Mismatch", "RangesIgnored", "Restart", "Transient"]


class Restart(Exception):
    """The partial cannot be continued: discard it and start from zero."""


class Transient(Exception):
    """A passing failure: resume from the current offset after a backoff."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class Expired(Exception):
    """Storage refused the URL; the URL source has renewed it."""


class Mismatch(Exception):
    """The object is not what the manifest describes (size, checksum)."""


class RangesIgnored(Exception):
    """Storage answered a ranged request with the whole, unchanged object."""
