"""Replacing a file so that a reader sees the old content or the new, never a torn file.

Used for what other programs read while this one runs: the ``--report`` JSON and the
``--metrics-file`` that the Prometheus node exporter scrapes at any moment. The temporary
file is created beside the target (a rename is only atomic within one file system), under
a unique name (two runs never write into each other's temporary file), fsynced before the
rename and the folder fsynced after it (a crash leaves the old file or the new one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["fsync_directory", "replace_file"]


def replace_file(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> None:
    """Atomically replace ``path`` with ``data``.

    Args:
        path: the file to write; its folder must exist.
        data: the whole new content.
        mode: permission bits of a new file, filtered by the umask as for any file a
            program creates (``0o666`` gives the usual ``0644``: the node exporter runs as
            another user and must be able to read a metrics file).

    Raises:
        OSError: the folder does not exist or cannot be written; ``path`` is untouched.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable (best effort: some file
    systems refuse to fsync a folder, and then there is nothing more to do)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
