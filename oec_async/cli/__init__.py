"""The ``oec-backups`` command line (needs the ``cli`` extra: ``pip install oec-async[cli]``).

``oec-backups --help`` builds the parser only: the client, the downloader, aiohttp and
rich are imported by the command that runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["console_main", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``oec-backups`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    from oec_async.cli._app import main as app_main  # noqa: PLC0415 - python -m oec_async

    return app_main(argv)


def console_main() -> None:
    """Entry point of the ``oec-backups`` console script."""
    sys.exit(main())
