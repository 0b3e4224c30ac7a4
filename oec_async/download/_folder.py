"""Folders opened once and used through their descriptor, never following a symlink.

Every file the downloader creates, reads, renames or removes in a backup folder is named
relative to the folder's open descriptor with ``O_NOFOLLOW``: a symlink planted at a
working name (a ``.part``, a sidecar, a ``.tmp``, the lock) is removed and never written
through, a symlink at a final name is replaced by the rename, never followed, and
swapping a folder for a symlink after it was opened changes nothing. Folders the
downloader keeps backups in must be its own and writable by nobody else.

All methods are blocking (they run in worker threads or take microseconds).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from oec_async._atomic import replace_in
from oec_async.download._layout import DIR_MODE, FILE_MODE, temporary_name
from oec_async.errors import DownloadError

__all__ = ["Folder", "UnsafeFolderError"]

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW


class UnsafeFolderError(DownloadError):
    """A folder the downloader would write into is a symlink, not its own, or writable
    by others."""


def _make_missing_parents(path: Path) -> None:
    """Create ``path`` and its missing parents ``0700`` (existing ones are left alone)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask


class Folder:
    """An open directory. Close it (or use ``with``) when done.

    An ``OSError`` from an operation on an entry names the entry's whole path (the
    operation itself only knew the name), so messages say where the disk refused.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def __repr__(self) -> str:
        return f"Folder({str(self.path)!r})"

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _naming(self, name: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.filename in (None, name):
                exc.filename = str(self.path / name)
            raise

    # -- opening folders -----------------------------------------------------------------

    @classmethod
    def open_root(cls, path: Path) -> Folder:
        """The destination root, created ``0700`` if missing. It may be a symlink: it is
        the caller's own choice of path, unlike everything beneath it."""
        _make_missing_parents(path)
        return cls(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path)

    def subfolder(self, name: str, *, create: bool, private: bool) -> Folder | None:
        """The folder ``name`` in this one (None if it is missing and not ``create``).

        Refuses a symlink or a non-folder at that name; when ``private``, also a folder
        owned by another user or writable by group or others.
        """
        if create:
            try:
                with self._naming(name):
                    os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            except FileExistsError:
                pass
            else:
                created = os.open(name, _DIRECTORY, dir_fd=self.fd)
                os.fchmod(created, DIR_MODE)  # the umask may have filtered mkdir's mode
                return Folder(created, self.path / name)
        try:
            fd = os.open(name, _DIRECTORY, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeFolderError(
                    f"refusing to use {self.path / name}: it is a symlink or not a folder"
                ) from None
            raise
        folder = Folder(fd, self.path / name)
        if private:
            try:
                folder._check_private()
            except BaseException:
                folder.close()
                raise
        return folder

    def _check_private(self) -> None:
        info = os.fstat(self.fd)
        if info.st_uid != os.geteuid():
            raise UnsafeFolderError(
                f"refusing to use {self.path}: it belongs to another user (uid {info.st_uid})"
            )
        if info.st_mode & 0o022:
            raise UnsafeFolderError(
                f"refusing to use {self.path}: it is writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 700 on it"
            )

    # -- entries -------------------------------------------------------------------------

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a symlink is not followed), or None if missing."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_file(self, name: str) -> bool:
        """A regular file (not a symlink) is at ``name``."""
        info = self.lstat(name)
        return info is not None and stat.S_ISREG(info.st_mode)

    def open_file(self, name: str, flags: int) -> int:
        """Open the regular file ``name`` (``FileNotFoundError`` if missing; an
        :class:`UnsafeFolderError` for a symlink or anything else that is not a file)."""
        try:
            with self._naming(name):
                fd = os.open(name, flags | _NOFOLLOW, FILE_MODE, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeFolderError(f"{self.path / name} is a symlink") from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeFolderError(f"{self.path / name} is not a regular file")
        return fd

    def open_working_file(self, name: str, flags: int) -> int:
        """Open (creating it ``0600`` if needed) one of the downloader's own files. Whatever
        else sits at that reserved name (a symlink, say) is removed first, never
        followed."""
        try:
            fd = self.open_file(name, flags | os.O_CREAT)
        except UnsafeFolderError:
            self.unlink(name)
            fd = self.open_file(name, flags | os.O_CREAT | os.O_EXCL)
        os.fchmod(fd, FILE_MODE)
        return fd

    def unlink(self, name: str) -> None:
        """Remove the entry ``name`` if present (a symlink itself, never its target)."""
        with contextlib.suppress(FileNotFoundError), self._naming(name):
            os.unlink(name, dir_fd=self.fd)

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` in this folder; whatever was at ``target`` (a
        symlink included) is replaced, not followed."""
        with self._naming(target):
            os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def remove_tree(self, name: str) -> None:
        """Remove the folder ``name`` and all it holds (symlinks inside are removed, not
        followed: ``shutil.rmtree`` works through descriptors here)."""
        info = self.lstat(name)
        if info is None:
            return
        if not stat.S_ISDIR(info.st_mode):
            self.unlink(name)
            return
        shutil.rmtree(name, dir_fd=self.fd)

    def rmdir_if_empty(self, name: str) -> bool:
        """Remove the folder ``name`` if it holds nothing; True if it is gone."""
        try:
            os.rmdir(name, dir_fd=self.fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        return True

    def names(self) -> list[str]:
        """The names in this folder."""
        return os.listdir(self.fd)

    # -- whole files ---------------------------------------------------------------------

    def read_bytes(self, name: str, limit: int) -> bytes | None:
        """The content of the regular file ``name`` if it is at most ``limit`` bytes;
        None if it is missing, larger, or not a regular file."""
        try:
            fd = self.open_file(name, os.O_RDONLY)
        except (FileNotFoundError, UnsafeFolderError):
            return None
        try:
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
        return data if len(data) <= limit else None

    def write_atomically(self, name: str, data: bytes, *, durable: bool = False) -> None:
        """Replace ``name`` with ``data`` (mode ``0600``): a crash leaves the old content
        or the new, never a torn file; ``durable`` also fsyncs the file and the folder.
        Staged under the reserved ``<name>.tmp`` (whatever is there is removed first)."""
        with self._naming(name):
            replace_in(
                self.fd,
                name,
                data,
                temporary=temporary_name(name),
                mode=FILE_MODE,
                durable=durable,
            )

    def removed(self) -> bool:
        """The folder was removed from its parent since it was opened (nothing can be
        created in it any more)."""
        return os.fstat(self.fd).st_nlink == 0

    def fsync(self) -> None:
        """Make the folder's entries (renames, new files) durable."""
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(self.fd)

    def close(self) -> None:
        """Close the descriptor (once; later calls do nothing)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
