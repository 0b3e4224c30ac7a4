"""``oec-backups``: parse the command line, run one command, map how it ended to an exit
status (see :mod:`._exit`; ``oec-backups --help`` lists them).

Only the parser is imported up front; each command's module (and the client, the
downloader, aiohttp and rich with it) is imported when that command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from oec_async.cli._exit import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Failed,
    exit_status_of,
    termination,
)
from oec_async.cli._messages import error_text
from oec_async.cli._parser import build_parser
from oec_async.errors import ConfigurationError, OECError

__all__ = ["COMMANDS", "build_parser", "main"]

Command = Callable[[argparse.Namespace, Any], Coroutine[Any, Any, None]]

#: Subcommand -> "module:function" of its implementation, imported when it runs.
COMMANDS = {
    "list": "_commands:cmd_list",
    "urls": "_commands:cmd_urls",
    "download": "_commands:cmd_download",
    "list-environments": "_commands:cmd_list_environments",
    "pull": "_pull:cmd_pull",
    "backup": "_backup:cmd_backup",
    "demo": "_demo:cmd_demo",
    "simulate": "_simulate:cmd_simulate",
    "verify": "_archive:COMMANDS.verify",
    "status": "_archive:COMMANDS.status",
    "prune": "_archive:COMMANDS.prune",
}
#: Commands whose interruption leaves partial downloads (said so when interrupted).
_DOWNLOADING = {"download", "pull", "demo", "backup"}


def _command(name: str) -> Command:
    module_name, _, attribute = COMMANDS[name].partition(":")
    module = importlib.import_module(f"oec_async.cli.{module_name}")
    found: Any = module
    for part in attribute.split("."):
        found = found[part] if isinstance(found, dict) else getattr(found, part)
    return found  # type: ignore[no-any-return]


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("oec_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


async def _run(command: Command, args: argparse.Namespace) -> None:
    """Run ``command``; SIGTERM cancels it as Ctrl-C does (partials kept), and is
    remembered so that the command exits 143."""
    import asyncio  # noqa: PLC0415 - asyncio loads when a command runs, not for --help

    from oec_async.cli._output import Output  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101

    def terminate() -> None:
        termination.requested = True
        task.cancel()

    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        await command(args, Output(args))
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)


def _interrupted(args: argparse.Namespace) -> int:
    what = "terminated" if termination.requested else "interrupted"
    print(
        f"{what}: partial downloads are kept and resume on the next run"
        if args.command in _DOWNLOADING
        else what,
        file=sys.stderr,
    )
    return EXIT_TERMINATED if termination.requested else EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``oec-backups`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        command = _command(args.command)
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        if exc.name != "rich":
            raise
        print("oec-backups needs the cli extra: pip install 'oec-async[cli]'", file=sys.stderr)
        return EXIT_USAGE
    import asyncio  # noqa: PLC0415

    try:
        asyncio.run(_run(command, args))
    except ConfigurationError as exc:
        print(f"oec-backups: error: {error_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Failed as failed:
        return failed.status
    except OECError as exc:
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return exit_status_of(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        return _interrupted(args)
    return 0
