"""Free disk space: checked before the first byte, and ENOSPC turned into a clear error.

Several transfers (the three artifacts of a backup, or a whole bulk pull) may share one
file system. Each claims what it has left to fetch; a new claim is granted only if the
free space minus everything still owed to earlier claims (and minus the caller's
``min_free_space`` reserve) covers it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from oec_async._units import format_size
from oec_async.errors import InsufficientSpaceError

__all__ = ["SpaceClaim", "SpaceLedger", "is_out_of_space"]

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_out_of_space(exc: OSError) -> bool:
    """The disk (or a quota, or the largest file allowed) is full."""
    return exc.errno in _NO_SPACE


class SpaceClaim:
    """What one transfer still has to write on one file system."""

    def __init__(self, ledger: SpaceLedger, device: int, amount: int) -> None:
        self._ledger = ledger
        self.device = device
        self.outstanding = amount

    def consumed(self, amount: int) -> None:
        """``amount`` bytes of the claim are now on disk (and in the free-space figure)."""
        self.outstanding = max(0, self.outstanding - amount)

    def release(self) -> None:
        """The transfer is over: nothing more is owed."""
        self.outstanding = 0
        self._ledger.forget(self)


class SpaceLedger:
    """The claims of every transfer sharing this ledger (a backup, or a whole bulk pull)."""

    def __init__(self, min_free_space: int = 0) -> None:
        self.min_free_space = min_free_space
        self._claims: list[SpaceClaim] = []

    def claim(self, directory: Path, amount: int, *, artifact: str) -> SpaceClaim:
        """Reserve ``amount`` bytes on ``directory``'s file system, or raise."""
        device = os.stat(directory).st_dev
        owed = sum(c.outstanding for c in self._claims if c.device == device)
        available = shutil.disk_usage(directory).free - owed - self.min_free_space
        if amount > available:
            raise InsufficientSpaceError(
                f"needs {format_size(amount)} more on disk, "
                f"{format_size(max(available, 0))} available "
                f"in {directory}"
                + (
                    f" after keeping {format_size(self.min_free_space)} free"
                    if self.min_free_space
                    else ""
                )
                + "; partial files are kept for a later resume",
                artifact=artifact,
                needed=amount,
                available=max(available, 0),
            )
        claim = SpaceClaim(self, device, amount)
        self._claims.append(claim)
        return claim

    def forget(self, claim: SpaceClaim) -> None:
        """Drop a released claim."""
        if claim in self._claims:
            self._claims.remove(claim)
