"""Where things go on disk: folders, final names, working names.

``dest/<environment_id>/`` holds, per backup:

- ``<backup_id>/`` — the backup, **complete**: every file at its final name, verified,
  and the completion record. The folder gets this name only once all of that is true, by
  one atomic rename, so a restore script that finds it can trust it.
- ``<backup_id>.part/`` — the work in progress: files already verified (final names),
  others as ``<name>.part`` with a ``<name>.part.json`` sidecar, and a progress record
  saying which files are done. A failed or interrupted download leaves it for a resume.
- ``.<backup_id>.lock`` — the lock that keeps two downloaders of that backup apart.

Folders are created ``0700`` and files ``0600``: a database dump holds every customer's
data. The downloader's own names are reserved: a file name taken from a URL may be none
of them, nor clash with another artifact's names (compared case-insensitively, as on
macOS and Windows file systems).
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote, urlsplit

__all__ = [
    "ARTIFACTS",
    "DEFAULT_NAMES",
    "DIR_MODE",
    "FILE_MODE",
    "RECORD_NAME",
    "artifact_filenames",
    "is_plain_name",
    "lock_name",
    "partial_name",
    "sidecar_name",
    "staging_name",
    "temporary_name",
    "working_names",
]

ARTIFACTS = ("manifest", "database", "filestore")
DEFAULT_NAMES = {
    "database": "dump.sql",
    "filestore": "filestore.tar.gz",
    "manifest": "manifest.json",
}
RECORD_NAME = ".oec-download.json"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
TMP_SUFFIX = ".tmp"
_OWN_SUFFIXES = (PART_SUFFIX, SIDECAR_SUFFIX, TMP_SUFFIX)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
DIR_MODE = 0o700
FILE_MODE = 0o600


def staging_name(backup_id: uuid.UUID) -> str:
    """The work-in-progress folder of a backup, beside its final folder."""
    return f"{backup_id}{PART_SUFFIX}"


def lock_name(backup_id: uuid.UUID) -> str:
    """The lock file of a backup, beside its folders."""
    return f".{backup_id}.lock"


def partial_name(final: str) -> str:
    """Where an artifact lives until verified: ``<name>.part``."""
    return final + PART_SUFFIX


def sidecar_name(final: str) -> str:
    """The partial's sidecar: ``<name>.part.json``."""
    return final + SIDECAR_SUFFIX


def temporary_name(name: str) -> str:
    """Where :func:`~oec_async.download._folder.Folder.write_atomically` stages ``name``."""
    return name + TMP_SUFFIX


def working_names(final: str) -> tuple[str, ...]:
    """Every name the downloader uses for one artifact whose final name is ``final``."""
    sidecar = sidecar_name(final)
    return (final, partial_name(final), sidecar, temporary_name(sidecar))


def is_plain_name(name: str) -> bool:
    """A file name the downloader may give a file: plain, short, none of its own."""
    return bool(_SAFE_NAME.match(name)) and not name.lower().endswith(_OWN_SUFFIXES)


def _url_basename(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    name = unquote(path.rsplit("/", 1)[-1])
    return name if is_plain_name(name) else None


def artifact_filenames(urls: dict[str, str | None]) -> dict[str, str]:
    """Each artifact's file name: its URL's last segment when that is a safe plain name
    whose working names clash with no other artifact's (case-insensitively), else the
    default name (or ``<artifact>-<default>`` if even that is taken)."""
    names: dict[str, str] = {}
    taken = {n.casefold() for n in (RECORD_NAME, temporary_name(RECORD_NAME))}
    for artifact in ARTIFACTS:
        url = urls.get(artifact)
        if url is None:
            continue
        candidates = (
            _url_basename(url),
            DEFAULT_NAMES[artifact],
            f"{artifact}-{DEFAULT_NAMES[artifact]}",
        )
        for name in candidates:
            if name is None:
                continue
            used = {n.casefold() for n in working_names(name)}
            if not used & taken:
                names[artifact] = name
                taken |= used
                break
    return names
