"""One downloader per backup: an ``flock`` on ``.<backup_id>.lock`` beside its folders.

The kernel drops the lock when its holder dies (kill -9 included), so a crash never leaves
a stale lock behind. A second process (or task) either waits up to ``timeout`` seconds or
fails at once with :class:`~oec_async.errors.DownloadLockedError`.

The lock file is removed when the download ends. That is safe because every holder checks,
once it has the lock, that the file it locked is still the one at that name: a process
that locked a file just removed by the previous holder lets go and tries again.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from types import TracebackType

from oec_async.download._folder import Folder
from oec_async.errors import DownloadLockedError

__all__ = ["FolderLock"]

_POLL = 0.1


class FolderLock:
    """An exclusive lock on the file ``name`` in ``folder``."""

    def __init__(self, folder: Folder, name: str, *, timeout: float = 0.0) -> None:
        self.folder = folder
        self.name = name
        self.timeout = timeout
        self._fd: int | None = None

    def _try_once(self) -> int | None:
        """The locked descriptor of the file now at ``name``, or None if it is taken."""
        fd = self.folder.open_working_file(self.name, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        held, current = os.fstat(fd), self.folder.lstat(self.name)
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            os.close(fd)  # the previous holder removed this file: lock the new one
            return self._try_once()
        return fd

    def _holder(self) -> str:
        data = self.folder.read_bytes(self.name, 32)
        pid = data.decode(errors="replace").strip() if data else ""
        return f"process {pid}" if pid.isdigit() else "another process"

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (never waits); True if taken."""
        fd = self._try_once()
        if fd is None:
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    async def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another holder."""
        deadline = time.monotonic() + self.timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise DownloadLockedError(
                    f"{self._holder()} is already downloading this backup into "
                    f"{self.folder.path} (wait for it, or pass lock_timeout= to wait here)"
                )
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
