"""Where things go on disk: folders, final names, partial names, sidecars.

``dest/<environment_id>/<backup_id>/`` holds, per artifact, either the final file or its
``<name>.part`` with a ``<name>.part.json`` sidecar, plus the folder's lock file and the
completion record. Folders are created ``0700`` and files ``0600``: a database dump holds
every customer's data.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "ARTIFACTS",
    "DEFAULT_NAMES",
    "LOCK_NAME",
    "RECORD_NAME",
    "artifact_filenames",
    "backup_directory",
    "is_plain_name",
    "make_private_dirs",
    "partial_path",
    "sidecar_path",
    "write_atomically",
]

ARTIFACTS = ("manifest", "database", "filestore")
DEFAULT_NAMES = {
    "database": "dump.sql",
    "filestore": "filestore.tar.gz",
    "manifest": "manifest.json",
}
LOCK_NAME = ".oec-download.lock"
RECORD_NAME = ".oec-download.json"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
DIR_MODE = 0o700
FILE_MODE = 0o600


def backup_directory(dest: Path, environment_id: uuid.UUID, backup_id: uuid.UUID) -> Path:
    return dest / str(environment_id) / str(backup_id)


def make_private_dirs(directory: Path) -> None:
    """Create missing folders ``0700``; folders that already exist are left as they are."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask


def is_plain_name(name: str) -> bool:
    """A file name the downloader may create: plain, short, and none of its own names."""
    return bool(_SAFE_NAME.match(name)) and not name.endswith((PART_SUFFIX, SIDECAR_SUFFIX))


def _url_basename(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    name = unquote(path.rsplit("/", 1)[-1])
    return name if is_plain_name(name) else None


def artifact_filenames(urls: dict[str, str | None]) -> dict[str, str]:
    """Each artifact's file name: its URL's last segment when that is a safe plain name
    (and unlike the others'), else the default name."""
    names: dict[str, str] = {}
    for artifact in ARTIFACTS:
        url = urls.get(artifact)
        if url is None:
            continue
        taken = {*names.values(), LOCK_NAME, RECORD_NAME}
        name = _url_basename(url)
        if name is None or name in taken:
            name = DEFAULT_NAMES[artifact]
        if name in taken:  # another artifact's URL used this artifact's default name
            name = f"{artifact}-{DEFAULT_NAMES[artifact]}"
        names[artifact] = name
    return names


def write_atomically(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (mode ``0600``) so that a crash leaves the old
    content or the new, never a torn file; ``durable`` also fsyncs before the rename."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


def sidecar_path(final: Path) -> Path:
    return final.with_name(final.name + SIDECAR_SUFFIX)
