"""What the local archive holds: every backup folder under a path, and its state.

The downloader writes ``dest/<environment_id>/<backup_id>/`` (both canonical UUIDs). A
backup folder is *complete* once it holds a valid completion record naming this very
backup (``read_record``); it is *locked* while a downloader holds the ``flock`` on its
lock file. Everything else in the tree is left alone and unreported: names that are not
UUIDs (the ``latest`` pointer, your own notes), symbolic links (never followed, so
nothing outside the given path is ever read), files where a folder is expected.

Nothing here writes: the lock is probed with a shared, non-blocking ``flock`` released at
once (a downloader taking the lock at that moment waits such a look out, see
:mod:`oec_async.download._lock`), and a missing lock file is not created.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from oec_async.download._layout import RECORD_NAME, lock_name, staging_name
from oec_async.download._lock import exclusively_held
from oec_async.download._record import CompletionRecord, read_record
from oec_async.errors import ConfigurationError

__all__ = [
    "BackupFolder",
    "EnvironmentSummary",
    "archive_status",
    "environment_folders",
    "environment_inventory",
    "inventory",
    "is_locked",
    "newest",
    "parse_folder_name",
]


def parse_folder_name(name: str) -> uuid.UUID | None:
    """The UUID a folder is named after, or None: only the canonical lower-case form the
    downloader writes counts (``ABC…`` or ``{…}`` are someone else's folders)."""
    try:
        value = uuid.UUID(name)
    except ValueError:
        return None
    return value if str(value) == name else None


@attrs.frozen
class BackupFolder:
    """One ``dest/<environment_id>/<backup_id>/`` folder, as found on disk."""

    directory: Path
    environment_id: uuid.UUID
    backup_id: uuid.UUID
    #: It holds a valid completion record of this backup: a whole, checked download.
    complete: bool
    #: A downloader holds its lock right now (a download or a re-check is running).
    locked: bool
    #: Every file the record names is there, a regular file of the size and modification
    #: time recorded when it was verified (a cheap ``lstat`` check, the downloader's own:
    #: a file written to since is no longer known good;
    #: :func:`~oec_async.archive.verify_archive` re-hashes).
    intact: bool
    #: Bytes of the regular files in the folder: the backup's files, or what a partial
    #: download holds so far (the downloader's few bytes of lock and record left out).
    size: int
    #: When the platform took the backup (from the record; when it has none, when the
    #: download completed). None for a folder that is not complete.
    created_at: datetime | None
    #: When the download completed. None for a folder that is not complete.
    completed_at: datetime | None
    #: The folder's own modification time (the only time an incomplete folder has).
    modified_at: datetime
    #: The record says a manifest was there and every file matched its checksum.
    verified: bool
    record: CompletionRecord | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def state(self) -> str:
        """``"complete"``, ``"in progress"`` (locked, no record yet) or ``"incomplete"``."""
        if self.complete:
            return "complete"
        return "in progress" if self.locked else "incomplete"

    def age(self, now: datetime | None = None) -> timedelta | None:
        """How old the backup is (``now`` minus its creation time); None if incomplete."""
        if self.created_at is None:
            return None
        return (now or datetime.now(UTC)) - self.created_at


def _children(
    directory: Path, name_to_id: Callable[[str], uuid.UUID | None]
) -> Iterator[tuple[uuid.UUID, Path]]:
    """Sub-folders whose name ``name_to_id`` reads as an id, by name; symbolic links and
    everything else are skipped."""
    with os.scandir(directory) as entries:
        found = [
            (value, Path(entry.path))
            for entry in entries
            if entry.is_dir(follow_symlinks=False) and (value := name_to_id(entry.name)) is not None
        ]
    yield from sorted(found, key=lambda item: item[1].name)


def _uuid_children(directory: Path) -> Iterator[tuple[uuid.UUID, Path]]:
    """Sub-folders named by a UUID (environment folders)."""
    return _children(directory, parse_folder_name)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None


def backup_id_of(name: str) -> uuid.UUID | None:
    """The backup a folder name is of: ``<backup_id>`` (complete) or ``<backup_id>.part``
    (a download in progress or interrupted); None for any other name."""
    backup_id = parse_folder_name(name.removesuffix(".part"))
    if backup_id is None or name not in (str(backup_id), staging_name(backup_id)):
        return None
    return backup_id


def _backup_children(directory: Path) -> Iterator[tuple[uuid.UUID, Path]]:
    """An environment folder's backup folders, complete or in progress."""
    return _children(directory, backup_id_of)


def _is_backup_folder(directory: Path) -> bool:
    """A download's work folder, or a folder holding a completion record."""
    if directory.name.endswith(".part") and backup_id_of(directory.name) is not None:
        return True
    return _lstat(directory / RECORD_NAME) is not None


def _lock_path(directory: Path) -> Path | None:
    backup_id = backup_id_of(directory.name)
    return directory.parent / lock_name(backup_id) if backup_id is not None else None


def is_locked(directory: Path) -> bool:
    """A downloader holds the backup's lock (``.<backup_id>.lock`` beside its folders).
    Probed with a shared non-blocking ``flock``, released at once; a missing lock file is
    not created (nobody holds it)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    lock = _lock_path(directory)
    if lock is None:
        return False
    try:
        fd = os.open(lock, flags)
    except OSError:  # missing, a symbolic link, unreadable: no downloader of ours holds it
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return exclusively_held(fd)
    finally:
        os.close(fd)


def _own_record(
    directory: Path, environment_id: uuid.UUID, backup_id: uuid.UUID
) -> CompletionRecord | None:
    record_stat = _lstat(directory / RECORD_NAME)
    if record_stat is None or not stat.S_ISREG(record_stat.st_mode):
        return None  # a symbolic link is never read through
    record = read_record(directory)
    if record is None or (record.backup_id, record.environment_id) != (backup_id, environment_id):
        return None  # copied or moved here from another folder: not this folder's proof
    return record


def _file_stats(directory: Path) -> dict[str, os.stat_result]:
    """Regular files of the folder -> their ``lstat``; the downloader's record left out."""
    stats = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name == RECORD_NAME or entry.name.endswith(".tmp"):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    stats[entry.name] = info
    return stats


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _examine(directory: Path, environment_id: uuid.UUID, backup_id: uuid.UUID) -> BackupFolder:
    stats = _file_stats(directory)
    record = _own_record(directory, environment_id, backup_id)
    folder_stat = directory.lstat()
    files = [entry for entry in (record.files.values() if record else ()) if entry is not None]
    # The downloader's own test of a file it verified: same size, same modification time.
    intact = record is not None and all(f.still_on_disk(stats.get(f.name)) for f in files)
    created = completed = None
    if record is not None:
        completed = record.completed_at
        created = record.created_at or completed or _timestamp(folder_stat.st_mtime)
    return BackupFolder(
        directory=directory,
        environment_id=environment_id,
        backup_id=backup_id,
        complete=record is not None,
        locked=is_locked(directory),
        intact=intact,
        size=sum(info.st_size for info in stats.values()),
        created_at=created,
        completed_at=completed,
        modified_at=_timestamp(folder_stat.st_mtime),
        verified=record is not None
        and record.files.get("manifest") is not None
        and all(f.verified for f in files),
        record=record,
    )


def _resolve(path: str | os.PathLike[str]) -> Path:
    # The given path itself may be a symbolic link (a mount point's alias): it is the
    # user's choice. Nothing below it is ever followed.
    resolved = Path(os.path.abspath(path))
    if not resolved.is_dir():
        what = "does not exist" if not resolved.exists() else "is not a folder"
        raise ConfigurationError(f"{resolved} {what}")
    return resolved


def environment_folders(path: str | os.PathLike[str]) -> list[tuple[uuid.UUID, Path]]:
    """The environment folders at or under ``path`` (a dest root or one environment
    folder), as ``(environment_id, folder)``.

    Raises:
        ConfigurationError: ``path`` is not a folder, or is one backup folder.
    """
    root = _resolve(path)
    if _is_backup_folder(root):
        raise ConfigurationError(
            f"{root} is a backup folder: give the destination root or an environment folder"
        )
    own = parse_folder_name(root.name)
    if own is not None and any(_is_backup_folder(child) for _, child in _backup_children(root)):
        return [(own, root)]
    return list(_uuid_children(root))


def inventory(path: str | os.PathLike[str]) -> list[BackupFolder]:
    """Every backup folder at or under ``path``: a destination root, one environment folder
    or one backup folder. Offline and read-only.

    Args:
        path: where to look.

    Returns:
        The folders, by environment, oldest backup first (incomplete folders last).

    Raises:
        ConfigurationError: ``path`` is not a folder.
    """
    root = _resolve(path)
    if _is_backup_folder(root):
        ids = parse_folder_name(root.parent.name), backup_id_of(root.name)
        if ids[0] is None or ids[1] is None:
            raise ConfigurationError(
                f"{root} holds a download but is not at <environment_id>/<backup_id>"
            )
        return [_examine(root, ids[0], ids[1])]
    folders = []
    for environment_id, environment in environment_folders(root):
        folders.extend(environment_inventory(environment, environment_id))
    return folders


def _age_order(folder: BackupFolder) -> tuple[int, float, str]:
    if folder.created_at is None:
        return (1, folder.modified_at.timestamp(), folder.directory.name)
    return (0, folder.created_at.timestamp(), folder.directory.name)


@attrs.frozen
class EnvironmentSummary:
    """One environment of the archive: its newest backups and what else is there."""

    environment_id: uuid.UUID
    directory: Path
    #: The newest complete backup (by creation time), if any.
    newest: BackupFolder | None
    #: The newest complete backup that is verified and intact: what a restore would use.
    newest_verified: BackupFolder | None
    complete: int
    incomplete: int
    #: Bytes of every backup folder of the environment.
    size: int

    def stale(self, max_age: timedelta, now: datetime | None = None) -> bool:
        """No verified backup, or the newest verified one is older than ``max_age``."""
        age = self.newest_verified.age(now) if self.newest_verified is not None else None
        return age is None or age > max_age


def newest(folders: list[BackupFolder], *, verified: bool) -> BackupFolder | None:
    """The newest complete folder (verified and intact ones only, when asked)."""
    candidates = [f for f in folders if f.complete and (not verified or (f.verified and f.intact))]
    return max(candidates, key=_age_order, default=None)


def archive_status(dest: str | os.PathLike[str]) -> list[EnvironmentSummary]:
    """Per environment folder under ``dest``, its newest complete and newest verified
    backup. Offline and read-only.

    Raises:
        ConfigurationError: ``dest`` is not a folder, or is a backup folder.
    """
    statuses = []
    for environment_id, directory in environment_folders(dest):
        folders = environment_inventory(directory, environment_id)
        statuses.append(
            EnvironmentSummary(
                environment_id=environment_id,
                directory=directory,
                newest=newest(folders, verified=False),
                newest_verified=newest(folders, verified=True),
                complete=sum(f.complete for f in folders),
                incomplete=sum(not f.complete for f in folders),
                size=sum(f.size for f in folders),
            )
        )
    return statuses


def environment_inventory(directory: Path, environment_id: uuid.UUID) -> list[BackupFolder]:
    """The backup folders of one environment folder, oldest first."""
    found = []
    for backup_id, folder in _backup_children(directory):
        try:
            found.append(_examine(folder, environment_id, backup_id))
        except FileNotFoundError:  # deleted (pruned) since it was listed: not there
            continue
    return sorted(found, key=_age_order)
