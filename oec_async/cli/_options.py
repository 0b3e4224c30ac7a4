"""The download options of the command line's flags."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oec_async.download import DownloadOptions

__all__ = ["download_options"]


def download_options(args: argparse.Namespace) -> DownloadOptions:
    """The :class:`DownloadOptions` of ``--strict``, ``--reverify``, ``--min-free-space``...

    Raises:
        ConfigurationError: a value the options refuse (named by its flag at the CLI
            boundary).
    """
    from oec_async.download import DownloadOptions  # noqa: PLC0415 - not for --help

    return DownloadOptions(
        strict=args.strict, reverify=args.reverify, min_free_space=args.min_free_space
    )
