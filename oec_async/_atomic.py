"""Replacing a file so that a reader sees the old content or the new, never a torn file.

The one durable-replace mechanism of the package: the downloader's sidecars and
completion records (in folders it owns, through their descriptors) and what other
programs read while this one runs (the ``--report`` JSON, the ``--metrics-file`` the
Prometheus node exporter scrapes at any moment) are all written by :func:`replace_in`.
The temporary file is created beside the target (a rename is only atomic within one file
system) with ``O_EXCL | O_NOFOLLOW``, written whole, fsynced when asked, renamed over the
target, and the folder fsynced after it; a failure removes it and leaves the target as it
was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["fsync_directory", "replace_file", "replace_in"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def replace_in(
    dir_fd: int,
    name: str,
    data: bytes,
    *,
    temporary: str,
    mode: int,
    durable: bool,
) -> None:
    """Replace the entry ``name`` of the open folder ``dir_fd`` with ``data``.

    Args:
        dir_fd: the folder, open.
        name: the file to replace (a symlink there is replaced, never followed).
        data: the whole new content.
        temporary: the name to stage it under; whatever is there already is removed first
            (it can only be a leftover of an interrupted write).
        mode: permission bits of the new file (before the umask).
        durable: fsync the file before the rename and the folder after it.

    Raises:
        OSError: the folder cannot be written; ``name`` is untouched.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=dir_fd)
    fd = os.open(temporary, _CREATE, mode, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise
    if durable:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(dir_fd)


def replace_file(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> None:
    """Atomically and durably replace ``path`` with ``data``, staged under a unique name
    (two runs never write into each other's temporary file).

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
    folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        temporary = f".{target.name}.{secrets.token_hex(6)}.tmp"
        replace_in(folder, target.name, data, temporary=temporary, mode=mode, durable=True)
    finally:
        os.close(folder)


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
