"""The ``latest`` pointer: ``dest/<environment_id>/latest -> <backup_id>``, for restore scripts.

A relative symbolic link to the environment's newest verified, intact backup folder (when
it has none, its newest complete one), so that a script restores
``dest/<environment_id>/latest/dump.sql`` without choosing a folder. It is replaced
atomically (a new link under a temporary name, renamed over the old one): a reader sees
the old target or the new, never a missing link. ``pull`` updates it after each
environment's download, ``prune`` after deleting; the inventory and ``prune`` skip it
(it is a symbolic link and not a UUID). A ``latest`` that is not a symbolic link (a folder
or file of your own) is never replaced.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import uuid
from pathlib import Path

from oec_async._atomic import fsync_directory
from oec_async.archive._inventory import (
    BackupFolder,
    environment_inventory,
    newest,
    parse_folder_name,
)

__all__ = ["LATEST_NAME", "read_latest", "update_latest"]

logger = logging.getLogger("oec_async.archive")

LATEST_NAME = "latest"


def _choose(folders: list[BackupFolder]) -> BackupFolder | None:
    candidates = [f for f in folders if f.intact]
    return newest(candidates, verified=True) or newest(candidates, verified=False)


def update_latest(
    environment_dir: str | os.PathLike[str], folders: list[BackupFolder] | None = None
) -> uuid.UUID | None:
    """Point ``environment_dir/latest`` at the environment's newest verified backup.

    Args:
        environment_dir: ``dest/<environment_id>``.
        folders: its inventory, when the caller has it (else it is taken now).

    Returns:
        The backup it points to, or None (no complete backup: a stale link is removed;
        or ``latest`` is something else than a symbolic link, left alone and logged).
    """
    directory = Path(environment_dir)
    environment_id = parse_folder_name(directory.name)
    if folders is None:
        if environment_id is None:
            return None
        folders = environment_inventory(directory, environment_id)
    chosen = _choose(folders)
    link = directory / LATEST_NAME
    try:
        current = link.lstat()
    except FileNotFoundError:
        current = None
    if current is not None and not stat.S_ISLNK(current.st_mode):
        logger.warning("%s is not a symbolic link of ours; leaving it alone", link)
        return None
    if chosen is None:
        if current is not None:
            link.unlink()
            logger.info("%s removed: no complete backup left", link)
        return None
    target = chosen.directory.name
    if current is not None and os.readlink(link) == target:
        return chosen.backup_id
    temporary = directory / f".{LATEST_NAME}.{secrets.token_hex(6)}.tmp"
    os.symlink(target, temporary)
    try:
        os.replace(temporary, link)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(directory)
    logger.info("%s -> %s", link, target)
    return chosen.backup_id


def read_latest(environment_dir: str | os.PathLike[str]) -> Path | None:
    """The backup folder ``latest`` points to, if it is one of this environment's backup
    folders (a link elsewhere is not ours, and is not followed)."""
    link = Path(environment_dir) / LATEST_NAME
    try:
        target = os.readlink(link)
    except OSError:
        return None
    if parse_folder_name(target) is None:
        return None
    folder = link.parent / target
    return folder if folder.is_dir() and not folder.is_symlink() else None
