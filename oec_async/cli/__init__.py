"""The ``oec-backups`` command line (needs the ``cli`` extra: ``pip install oec-async[cli]``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["console_main", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from oec_async.cli._app import main as app_main  # noqa: PLC0415 - rich is optional
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        if exc.name != "rich":
            raise
        print(
            "oec-backups needs the cli extra: pip install 'oec-async[cli]'",
            file=sys.stderr,
        )
        return 2
    return app_main(argv)


def console_main() -> None:
    """Entry point of the ``oec-backups`` console script."""
    sys.exit(main())
