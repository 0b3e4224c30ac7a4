"""One downloader per backup: an ``flock`` on ``.<backup_id>.lock`` beside its folders.

The kernel drops the lock when its holder dies (kill -9 included), so a crash never leaves
a stale lock behind. A second process (or task) either waits up to ``timeout`` seconds or
fails at once with :class:`~oec_async.errors.DownloadLockedError`.

Only an exclusive holder is another downloader (or a prune deleting the folder). A
*shared* holder is someone looking (the archive's inventory probes with a shared lock and
lets go at once): it is waited out for up to a second, whatever ``timeout`` says, so a
``status`` run at the moment a pull starts never makes that pull fail.

The lock file is removed when the download ends. That is safe because every holder checks,
once it has the lock, that the file it locked is still the one at that name: a process
that locked a file just removed by the previous holder lets go and tries again.
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import os
import time
from types import TracebackType

from oec_async.download._folder import Folder
from oec_async.errors import DownloadLockedError

__all__ = ["FolderLock", "exclusively_held"]

_POLL = 0.1
#: How long someone only looking at the lock (a shared holder) is waited out, and how
#: often it is tried meanwhile: such a holder lets go within microseconds.
_LOOKER_GRACE = 1.0
_LOOKER_POLL = 0.002


class _Attempt(enum.Enum):
    TAKEN = "taken"
    LOOKED_AT = "looked at"  # only shared holders: the inventory's probe
    HELD = "held"  # an exclusive holder: another downloader


def exclusively_held(fd: int) -> bool:
    """Someone holds an exclusive lock on the file open at ``fd`` (not only shared ones):
    a downloader. Looks with a shared, non-blocking lock, released at once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


class FolderLock:
    """An exclusive lock on the file ``name`` in ``folder``."""

    def __init__(self, folder: Folder, name: str, *, timeout: float = 0.0) -> None:
        self.folder = folder
        self.name = name
        self.timeout = timeout
        self._fd: int | None = None

    def _try_once(self) -> tuple[_Attempt, int | None]:
        """The locked descriptor of the file now at ``name``, or why it is not ours."""
        fd = self.folder.open_working_file(self.name, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = exclusively_held(fd)
            os.close(fd)
            return (_Attempt.HELD if held else _Attempt.LOOKED_AT), None
        held_stat, current = os.fstat(fd), self.folder.lstat(self.name)
        if current is None or (current.st_dev, current.st_ino) != (
            held_stat.st_dev,
            held_stat.st_ino,
        ):
            os.close(fd)  # the previous holder removed this file: lock the new one
            return self._try_once()
        return _Attempt.TAKEN, fd

    def _attempt(self) -> _Attempt:
        attempt, fd = self._try_once()
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self._fd = fd
        return attempt

    def _holder(self) -> str:
        data = self.folder.read_bytes(self.name, 32)
        pid = data.decode(errors="replace").strip() if data else ""
        return f"process {pid}" if pid.isdigit() else "another process"

    def try_acquire(self) -> bool:
        """Take the lock unless another downloader holds it (waits only for someone
        looking at it, see the module docstring); True if taken."""
        grace = time.monotonic() + _LOOKER_GRACE
        while (attempt := self._attempt()) is _Attempt.LOOKED_AT and time.monotonic() < grace:
            time.sleep(_LOOKER_POLL)
        return attempt is _Attempt.TAKEN

    async def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another holder."""
        now = time.monotonic()
        deadline, grace = now + self.timeout, now + _LOOKER_GRACE
        while (attempt := self._attempt()) is not _Attempt.TAKEN:
            now = time.monotonic()
            if attempt is _Attempt.LOOKED_AT and now < grace:
                await asyncio.sleep(_LOOKER_POLL)
            elif now >= deadline:
                holder = (
                    f"{self._holder()} is already downloading this backup into"
                    if attempt is _Attempt.HELD
                    else "another process has been looking at the lock of this backup for "
                    f"over {_LOOKER_GRACE:g} s in"
                )
                raise DownloadLockedError(
                    f"{holder} {self.folder.path} (wait for it, or pass lock_timeout= to wait here)"
                )
            else:
                await asyncio.sleep(_POLL)

    def release(self) -> None:
        """Remove the lock file and let go (no-op if not held)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                self.folder.unlink(self.name)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    async def __aenter__(self) -> FolderLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
