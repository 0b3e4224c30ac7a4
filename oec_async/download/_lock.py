"""One downloader per backup folder: an ``flock`` on a lock file inside it.

The kernel drops the lock when its holder dies (kill -9 included), so a crash never leaves
a stale lock behind. A second process (or task) either waits up to ``timeout`` seconds or
fails at once with :class:`~oec_async.errors.DownloadLockedError`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from oec_async.errors import DownloadLockedError

__all__ = ["DirectoryLock"]

_POLL = 0.1


class DirectoryLock:
    def __init__(self, path: Path, *, timeout: float = 0.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return "another process"
        return f"process {pid}" if pid.isdigit() else "another process"

    async def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        try:
            while not self._try(fd):
                if time.monotonic() >= deadline:
                    raise DownloadLockedError(
                        f"{self._holder()} is already downloading into {self.path.parent} "
                        "(wait for it, or pass lock_timeout= to wait here)"
                    )
                await asyncio.sleep(_POLL)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def __aenter__(self) -> DirectoryLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
