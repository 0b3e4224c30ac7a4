"""Deleting the backups a retention policy no longer keeps, and nothing else.

Per environment, the complete backup folders go through
:func:`~oec_async.archive.plan_retention`; of those it would remove, ``prune`` still keeps:

- the environment's newest verified, intact backup (a policy can never leave an
  environment without a restorable copy);
- a locked folder (a download or re-check is running in it).

It never considers a folder without a completion record (partial, foreign or in progress),
anything that is not a UUID-named folder, or a symbolic link; it never follows one.

Deleting one folder, step by step:

1. Open the environment folder and the backup folder by name, ``O_NOFOLLOW``, and work
   relative to those descriptors from then on: a folder swapped for a symbolic link after
   the inventory is refused, and nothing outside the destination can be reached.
2. Take the folder's download lock (non-blocking; a running downloader wins and the folder
   is kept). Holding it, no downloader can start in the folder.
3. Re-read the completion record under the lock: still this backup, still complete.
4. Rename the folder to ``.oec-prune.<backup_id>``: it leaves the archive in one atomic
   step, and a new download of the same backup starts in a fresh folder.
5. Remove the renamed folder (``shutil.rmtree`` on a descriptor, which never follows
   symbolic links), then release the lock. A crash during this step leaves a
   ``.oec-prune.*`` folder that the next prune finishes removing.

Each deletion is logged (``oec_async.archive``, INFO).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

import attrs

from oec_async._atomic import fsync_directory
from oec_async._units import format_size
from oec_async.archive._inventory import (
    BackupFolder,
    environment_folders,
    environment_inventory,
    newest,
    parse_folder_name,
)
from oec_async.archive._latest import update_latest
from oec_async.archive._retention import RetentionPolicy, plan_retention
from oec_async.download._folder import Folder
from oec_async.download._layout import lock_name
from oec_async.download._lock import FolderLock
from oec_async.download._record import read_record
from oec_async.errors import ConfigurationError

__all__ = ["TRASH_PREFIX", "Action", "PruneAction", "PruneResult", "prune", "prune_environment"]

logger = logging.getLogger("oec_async.archive")

#: A folder being deleted is first renamed ``.oec-prune.<backup_id>``.
TRASH_PREFIX = ".oec-prune."
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_EMPTY_POLICY = "the retention policy has no rule: give at least one keep rule (e.g. last=7)"

Action = Literal["keep", "delete", "ignore"]


@attrs.frozen
class PruneAction:
    """What prune did (or, in a dry run, would do) with one backup folder."""

    directory: Path
    environment_id: uuid.UUID
    backup_id: uuid.UUID
    #: ``keep``: the policy or a safety rule keeps it; ``delete``: deleted (dry run: would
    #: be); ``ignore``: not a complete backup, never considered.
    action: Action
    #: Why, e.g. ``("daily 2026-05-04", "weekly 2026-W19")`` or ``("no rule keeps it",)``.
    reasons: tuple[str, ...]
    created_at: datetime | None
    size: int


@attrs.frozen
class PruneResult:
    """Every folder prune looked at, and what happened to it."""

    actions: tuple[PruneAction, ...]
    dry_run: bool
    #: Deletions that failed (the folder is then in ``kept``, with the reason).
    errors: tuple[str, ...] = ()

    def _where(self, action: Action) -> list[Path]:
        return [a.directory for a in self.actions if a.action == action]

    @property
    def kept(self) -> list[Path]:
        """Folders kept, by a rule of the policy or a safety rule."""
        return self._where("keep")

    @property
    def deleted(self) -> list[Path]:
        """Deleted folders (in a dry run: the folders a real run would delete)."""
        return self._where("delete")

    @property
    def ignored(self) -> list[Path]:
        """Folders that are not complete backups: never considered, never touched."""
        return self._where("ignore")

    @property
    def bytes_freed(self) -> int:
        """Bytes of the deleted folders (in a dry run: that a real run would free)."""
        return sum(a.size for a in self.actions if a.action == "delete")


def _ignored(folder: BackupFolder) -> PruneAction:
    why = (
        "in progress: a download holds its lock"
        if folder.locked
        else "no completion record (partial or not a download of oec-async)"
    )
    return PruneAction(
        folder.directory,
        folder.environment_id,
        folder.backup_id,
        "ignore",
        (why,),
        None,
        folder.size,
    )


@contextlib.contextmanager
def _opened(name: str, dir_fd: int | None) -> Iterator[int]:
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _download_lock(env_fd: int, directory: Path, backup_id: uuid.UUID) -> Iterator[bool]:
    """Hold the backup's download lock (the downloader's own, beside its folders) while
    deleting; yields False if someone has it."""
    with Folder(os.dup(env_fd), directory) as env:
        lock = FolderLock(env, lock_name(backup_id))
        ours = lock.try_acquire()
        try:
            yield ours
        finally:
            lock.release()


def _remove_tree(name: str, dir_fd: int) -> None:
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux, BSD, macOS have it
        raise ConfigurationError("prune needs a platform where rmtree cannot follow symlinks")
    shutil.rmtree(name, dir_fd=dir_fd)


def _delete(env_fd: int, folder: BackupFolder) -> str | None:
    """Delete one backup folder (steps in the module docstring); the reason it was kept
    instead, or None once it is gone."""
    name = folder.directory.name
    try:
        with (
            _opened(name, env_fd),  # refuses a folder swapped for a symlink
            _download_lock(env_fd, folder.directory.parent, folder.backup_id) as ours,
        ):
            if not ours:
                return "locked: a download started in it"
            record = read_record(folder.directory)
            if record is None or record.backup_id != folder.backup_id:
                return "not deleted: its completion record changed meanwhile"
            trash = TRASH_PREFIX + name
            os.rename(name, trash, src_dir_fd=env_fd, dst_dir_fd=env_fd)
            _remove_tree(trash, env_fd)
    except OSError as exc:
        return f"not deleted: {exc.strerror or exc}"
    return None


def _finish_interrupted(env_fd: int, directory: Path) -> None:
    """Remove what a crashed prune left: ``.oec-prune.<uuid>`` folders (not links)."""
    with os.scandir(env_fd) as entries:
        leftovers = [
            e.name
            for e in entries
            if e.name.startswith(TRASH_PREFIX)
            and parse_folder_name(e.name.removeprefix(TRASH_PREFIX)) is not None
            and e.is_dir(follow_symlinks=False)
        ]
    for name in leftovers:
        _remove_tree(name, env_fd)
        logger.info("removed %s, left by an interrupted prune", directory / name)


def prune_environment(
    environment_dir: str | os.PathLike[str],
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> PruneResult:
    """Prune one environment folder (``dest/<environment_id>``); see :func:`prune`."""
    if policy.empty:
        raise ConfigurationError(
            "the retention policy keeps everything: give at least one keep rule (e.g. keep_last=7)"
        )
    directory = Path(os.path.abspath(environment_dir))
    environment_id = parse_folder_name(directory.name)
    if environment_id is None:
        raise ConfigurationError(f"{directory} is not an environment folder (not a UUID)")
    folders = environment_inventory(directory, environment_id)
    complete = [f for f in folders if f.complete]
    protected = newest(complete, verified=True)
    plan = plan_retention(
        {f: f.created_at for f in complete if f.created_at}, policy, now=now, tz=tz
    )

    actions: list[PruneAction] = []
    errors: list[str] = []
    with _opened(str(directory), None) as env_fd:
        for decision in plan:
            folder = decision.key
            reasons = decision.reasons
            action: Action = "keep"
            if not decision.keep:
                if folder is protected:
                    reasons = ("newest verified backup: never deleted",)
                elif folder.locked:
                    reasons = ("locked: a download is running in it",)
                else:
                    action, reasons = "delete", ("no rule keeps it",)
            if action == "delete" and not dry_run:
                kept_because = _delete(env_fd, folder)
                if kept_because is not None:
                    action, reasons = "keep", (kept_because,)
                    if kept_because.startswith("not deleted"):
                        errors.append(f"{folder.directory}: {kept_because}")
                else:
                    logger.info(
                        "deleted %s (created %s, %s): %s",
                        folder.directory,
                        folder.created_at.isoformat() if folder.created_at else "?",
                        format_size(folder.size),
                        policy.describe(),
                    )
            actions.append(
                PruneAction(
                    folder.directory,
                    environment_id,
                    folder.backup_id,
                    action,
                    reasons,
                    folder.created_at,
                    folder.size,
                )
            )
        actions.extend(_ignored(f) for f in folders if not f.complete)
        if not dry_run:
            _finish_interrupted(env_fd, directory)
            fsync_directory(directory)
    if not dry_run:
        update_latest(directory)
    return PruneResult(actions=tuple(actions), dry_run=dry_run, errors=tuple(errors))


def prune(
    dest: str | os.PathLike[str],
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    environment_ids: list[uuid.UUID] | None = None,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> PruneResult:
    """Delete, per environment, the complete backup folders ``policy`` does not keep.

    Never deletes an environment's newest verified backup, a folder without a completion
    record, a locked folder, or anything outside ``dest``; never follows a symbolic link.
    Blocking file-system work (``asyncio.to_thread`` from async code).

    Args:
        dest: a destination root (or one environment folder).
        policy: what to keep (restic ``forget`` semantics, by creation time).
        dry_run: decide and report, delete nothing.
        environment_ids: only these environments (default: every one under ``dest``).
        now: the current time, for ``within`` (default: now).
        tz: the time zone days, weeks, months are read in (default: the local one).

    Returns:
        What happened to every folder looked at.

    Raises:
        ConfigurationError: ``dest`` is not a folder, or the policy has no rule.
    """
    if policy.empty:
        raise ConfigurationError(_EMPTY_POLICY)
    actions: list[PruneAction] = []
    errors: list[str] = []
    wanted = set(environment_ids) if environment_ids is not None else None
    for environment_id, directory in environment_folders(dest):
        if wanted is not None and environment_id not in wanted:
            continue
        result = prune_environment(directory, policy, dry_run=dry_run, now=now, tz=tz)
        actions.extend(result.actions)
        errors.extend(result.errors)
    return PruneResult(actions=tuple(actions), dry_run=dry_run, errors=tuple(errors))
