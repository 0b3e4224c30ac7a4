"""Progress events: what a progress bar, a log line or a metrics exporter needs.

Events are byte-accurate through retries and resumes: ``bytes_done`` is always the number
of verified-so-far bytes on disk for that artifact, so after a restart from zero it goes
back down (with a ``"restart"`` event) instead of counting the same bytes twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Literal

import attrs

__all__ = ["EventKind", "ProgressCallback", "ProgressEvent"]

#: ``start``: headers received, total known (or None); ``progress``: bytes written;
#: ``restart``: the partial was discarded and the fetch begins again from zero;
#: ``retry``: the transfer is waiting to resume after an error; ``verifying``: all bytes
#: are on disk and are being checked; ``done``: the file is at its final name;
#: ``skipped``: the file was already complete from an earlier run (or is kept from an
#: interrupted one); ``repair``: an earlier complete copy was found damaged on disk and
#: is being repaired.
EventKind = Literal[
    "start", "progress", "restart", "retry", "verifying", "done", "skipped", "repair"
]


@attrs.frozen
class ProgressEvent:
    """One step of one file's transfer."""

    backup_id: uuid.UUID
    environment_id: uuid.UUID
    artifact: str  # "database", "filestore" or "manifest"
    bytes_done: int
    total: int | None
    resumed_from: int  # bytes already on disk when this call started
    kind: EventKind = "progress"

    @property
    def fraction(self) -> float | None:
        """``bytes_done / total`` (None while the total is unknown)."""
        if not self.total:
            return None
        return min(1.0, self.bytes_done / self.total)


ProgressCallback = Callable[[ProgressEvent], None]
