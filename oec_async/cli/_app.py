"""``oec-backups``: argument parsing and the commands.

Exit codes: 0 everything succeeded, 1 something failed (each failure printed as one line),
2 usage error (bad arguments, malformed key, http base URL...), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from oec_async._client import OECClient
from oec_async._config import MAX_EXPIRES_IN, MIN_EXPIRES_IN, coerce_uuid
from oec_async._redact import redact_text
from oec_async._version import __version__
from oec_async.cli._render import (
    backup_rows,
    download_json,
    make_progress_view,
    print_backups,
    print_json,
    print_summary,
    result_json,
)
from oec_async.download import DownloadOptions, PullResult
from oec_async.errors import ConfigurationError, OECError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Failed(Exception):
    """A command finished, but not everything succeeded (exit 1, already reported)."""


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        help="API key (default: $OEC_API_KEY; prefer the variable: arguments show in ps)",
    )
    group.add_argument("--base-url", help="API base URL (default: $OEC_BASE_URL or the platform)")
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds before an API call fails or a silent download is resumed (default 30)",
    )
    group.add_argument(
        "--requests-per-minute",
        type=int,
        default=100,
        metavar="N",
        help="pace API calls under N per minute (default 100; 0: no pacing)",
    )
    group.add_argument(
        "--max-connections",
        type=_positive_int,
        default=16,
        metavar="N",
        help="storage connections open at once, overall (default 16)",
    )
    group.add_argument(
        "--max-connections-per-host",
        type=_positive_int,
        default=8,
        metavar="N",
        help="storage connections open at once to one host (default 8)",
    )


def _add_output_args(parser: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    if quiet:
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _add_download_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", required=True, type=Path, help="destination folder")
    parser.add_argument(
        "--strict", action="store_true", help="fail files the manifest has no checksum for"
    )
    parser.add_argument(
        "--reverify", action="store_true", help="re-hash files of already complete downloads"
    )
    parser.add_argument(
        "--min-free-space",
        type=int,
        default=0,
        metavar="BYTES",
        help="keep this many bytes free on the destination disk",
    )


def _expires_in(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer number of seconds") from None
    if not MIN_EXPIRES_IN <= seconds <= MAX_EXPIRES_IN:
        raise argparse.ArgumentTypeError(f"must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN}")
    return seconds


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oec-backups",
        description="List, download and verify OEC.sh backups.",
        epilog="The API key is read from $OEC_API_KEY unless --api-key is given.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list an environment's backups, newest first")
    listing.add_argument("env_id", metavar="ENV_ID")
    listing.add_argument("--status", help="only backups with this status (e.g. completed)")
    listing.add_argument("--type", dest="backup_type", help="only this type (e.g. scheduled)")
    listing.add_argument(
        "--limit", type=_positive_int, default=20, help="at most N backups (default 20)"
    )
    _add_output_args(listing, quiet=False)
    _add_connection_args(listing)

    urls = commands.add_parser("urls", help="print a backup's presigned download URLs")
    urls.add_argument("backup_id", metavar="BACKUP_ID")
    urls.add_argument("--expires-in", type=_expires_in, default=3600, metavar="SECONDS")
    _add_output_args(urls, quiet=False)
    _add_connection_args(urls)

    download = commands.add_parser("download", help="download and verify one backup")
    download.add_argument("backup_id", metavar="BACKUP_ID")
    _add_download_args(download)
    _add_output_args(download)
    _add_connection_args(download)

    pull = commands.add_parser("pull", help="download the newest backup of each environment")
    pull.add_argument("env_ids", nargs="*", metavar="ENV_ID")
    pull.add_argument(
        "--from-file",
        type=Path,
        help="read environment ids from a file (one per line, # comments)",
    )
    pull.add_argument(
        "--concurrency", type=_positive_int, default=4, help="environments at once (default 4)"
    )
    _add_download_args(pull)
    _add_output_args(pull)
    _add_connection_args(pull)

    demo = commands.add_parser("demo", help="pull a handful of simulated environments")
    demo.add_argument(
        "--dest",
        type=Path,
        help="where to put the files (default: ./demo-backups, emptied at each run)",
    )
    demo.add_argument("--environments", type=_positive_int, default=6)
    demo.add_argument("--seed", type=int, default=7)
    _add_output_args(demo)

    simulate = commands.add_parser("simulate", help="run the platform simulator on loopback")
    simulate.add_argument("--port", type=int, default=0, help="API port (default: any free)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--environments", type=_positive_int, default=3)
    simulate.add_argument(
        "--dump-size", type=_positive_int, default=8 * 1024 * 1024, metavar="BYTES"
    )
    simulate.add_argument("--no-rate-limit", action="store_true")
    return parser


def _client(args: argparse.Namespace) -> OECClient:
    return OECClient(
        api_key=args.api_key,
        base_url=args.base_url,
        timeout=args.timeout,
        requests_per_minute=args.requests_per_minute or None,
        max_connections=args.max_connections,
        max_connections_per_host=args.max_connections_per_host,
    )


def _options(args: argparse.Namespace) -> DownloadOptions:
    return DownloadOptions(
        strict=args.strict, reverify=args.reverify, min_free_space=args.min_free_space
    )


def _read_env_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    ids = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.append(entry)
    return ids


async def _cmd_list(args: argparse.Namespace, out: Console) -> None:
    env_id = coerce_uuid(args.env_id, "ENV_ID")
    async with _client(args) as client:
        backups = []
        async for backup in client.iter_backups(
            env_id,
            status=args.status,
            backup_type=args.backup_type,
            page_size=min(args.limit, 100),
        ):
            backups.append(backup)
            if len(backups) >= args.limit:
                break
    if args.json:
        print_json(backup_rows(backups))
    elif not backups:
        print("no backups match", file=sys.stderr)
    else:
        print_backups(backups, out)


async def _cmd_urls(args: argparse.Namespace, out: Console) -> None:
    backup_id = coerce_uuid(args.backup_id, "BACKUP_ID")
    async with _client(args) as client:
        urls = await client.get_download_urls(backup_id, expires_in=args.expires_in)
    print(
        "warning: these URLs are secrets: anyone holding one can download the file "
        f"until {urls.expires_at or 'it expires'}",
        file=sys.stderr,
    )
    fields = {
        "database_url": urls.database_url,
        "filestore_url": urls.filestore_url,
        "manifest_url": urls.manifest_url,
    }
    if args.json:
        print_json(
            {
                "backup_id": str(urls.backup_id),
                **fields,
                "expires_in": urls.expires_in,
                "expires_at": urls.expires_at.isoformat() if urls.expires_at else None,
            }
        )
        return
    for name, url in fields.items():
        print(f"{name.removesuffix('_url')}: {url if url is not None else '(none)'}")


async def _cmd_download(args: argparse.Namespace, out: Console) -> None:
    backup_id = coerce_uuid(args.backup_id, "BACKUP_ID")
    view = make_progress_view(quiet=args.quiet or args.json)
    try:
        async with _client(args) as client:
            result = await client.download_backup(
                backup_id, args.dest, progress=view.on_file, options=_options(args)
            )
    finally:
        view.close()
    if args.json:
        print_json(download_json(result))
        return
    state = "verified" if result.verified else "NOT verified (no manifest checksum)"
    note = " (already complete, nothing transferred)" if result.skipped else ""
    out.print(f"{result.directory}: {len(result.files)} files, {state}{note}")
    for file in result.files:
        out.print(f"  {file.path.name}  sha256={file.sha256}")


async def run_pull(
    client: OECClient,
    env_ids: Sequence[Any],
    dest: Path,
    *,
    concurrency: int,
    options: DownloadOptions,
    quiet: bool,
) -> list[PullResult]:
    view = make_progress_view(quiet=quiet)
    try:
        return await client.pull_latest(
            env_ids,
            dest,
            concurrency=concurrency,
            progress=view.on_file,
            batch_progress=view.on_batch,
            options=options,
        )
    finally:
        view.close()


def report_pull(results: Sequence[PullResult], args: argparse.Namespace, out: Console) -> None:
    if args.json:
        print_json([result_json(r) for r in results])
    else:
        print_summary(results, out)
    if not all(r.ok for r in results):
        for result in results:
            if result.error is not None:
                print(f"error: {result.environment_id}: {result.error}", file=sys.stderr)
        raise _Failed


async def _cmd_pull(args: argparse.Namespace, out: Console) -> None:
    env_ids = list(args.env_ids)
    if args.from_file is not None:
        env_ids += _read_env_file(args.from_file)
    if not env_ids:
        raise ConfigurationError("no environment ids: give ENV_ID arguments or --from-file")
    ids = [coerce_uuid(value, "ENV_ID") for value in env_ids]
    async with _client(args) as client:
        results = await run_pull(
            client,
            ids,
            args.dest,
            concurrency=args.concurrency,
            options=_options(args),
            quiet=args.quiet or args.json,
        )
    report_pull(results, args, out)


async def _cmd_demo(args: argparse.Namespace, out: Console) -> None:
    from oec_async.cli._demo import run_demo  # noqa: PLC0415 - the simulator loads on demand

    await run_demo(args, out)


async def _cmd_simulate(args: argparse.Namespace, out: Console) -> None:
    from oec_async.testing import OECSimulator, SimulatorSettings  # noqa: PLC0415 - on demand

    simulator = OECSimulator(
        seed=args.seed,
        environments=args.environments,
        port=args.port,
        dump_size=args.dump_size,
        settings=SimulatorSettings(read_limit=None) if args.no_rate_limit else None,
    )
    # Process managers (docker stop, systemd, CI teardown) stop a server with SIGTERM:
    # stop cleanly then too, so the simulator's temp folder of generated dumps is removed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with simulator as sim:
            print(f"OEC_BASE_URL={sim.base_url}", flush=True)
            print(f"OEC_API_KEY={sim.api_key}", flush=True)
            for env_id in sim.environment_ids:
                print(f"environment {env_id}", flush=True)
            print("simulator running; Ctrl-C to stop", file=sys.stderr, flush=True)
            await stop.wait()
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)
    print("simulator stopped", file=sys.stderr, flush=True)


_COMMANDS = {
    "list": _cmd_list,
    "urls": _cmd_urls,
    "download": _cmd_download,
    "pull": _cmd_pull,
    "demo": _cmd_demo,
    "simulate": _cmd_simulate,
}


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("oec_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    # Tables keep whole ids on one line when piped (no terminal width to respect).
    out = Console(soft_wrap=False, highlight=False, width=None if sys.stdout.isatty() else 200)
    try:
        asyncio.run(_COMMANDS[args.command](args, out))
    except ConfigurationError as exc:
        print(f"oec-backups: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except _Failed:
        return EXIT_FAILED
    except OECError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        downloading = args.command in ("download", "pull", "demo")
        print(
            "interrupted: partial downloads are kept and resume on the next run"
            if downloading
            else "interrupted",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK
