"""The download options of the command line's flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from oec_async.errors import ConfigurationError

if TYPE_CHECKING:
    from oec_async.download import DownloadOptions

__all__ = ["download_options", "prepare_dest"]


def download_options(args: argparse.Namespace) -> DownloadOptions:
    """The :class:`DownloadOptions` of ``--strict``, ``--reverify``, ``--min-free-space``,
    ``--lock-timeout``, ``--transfer-retries``, ``--expires-in``, ``--segments`` and
    ``--segment-threshold``.

    Raises:
        ConfigurationError: a value the options refuse (named by its flag at the CLI
            boundary).
    """
    from oec_async.download import DownloadOptions  # noqa: PLC0415 - not for --help

    return DownloadOptions(
        strict=args.strict,
        reverify=args.reverify,
        min_free_space=args.min_free_space,
        lock_timeout=args.lock_timeout,
        retries=args.transfer_retries,
        expires_in=args.expires_in,
        segments=args.segments,
        segment_threshold=args.segment_threshold,
    )


def prepare_dest(dest: Path, *, mkdir: bool) -> None:
    """Check that ``--dest`` is a folder; create it (``0700``, with its parents) only
    when ``--mkdir`` asks.

    A missing destination is refused by default: in a cron job it is most often a disk
    that failed to mount, and creating the folder would fill the disk beneath it.

    Raises:
        ConfigurationError: ``dest`` is missing (without ``mkdir``), is not a folder, or
            cannot be created.
    """
    if dest.is_dir():
        return
    if dest.exists():
        raise ConfigurationError(f"--dest {dest} is not a folder")
    if not mkdir:
        raise ConfigurationError(
            f"--dest {dest} does not exist: create it, or give --mkdir "
            "(a missing destination is often a disk that is not mounted)"
        )
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"--dest {dest}: cannot create it ({exc.strerror or exc})"
        ) from None
