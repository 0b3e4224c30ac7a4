"""Every subcommand and option of ``oec-backups``, with its help line.

Building the parser imports nothing but argparse and :mod:`._argtypes`: no client, no
downloader, no aiohttp, no rich, so ``oec-backups --help`` (and a usage error) answers
at once. The commands import what they need when they run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from oec_async._version import __version__
from oec_async.cli import _argtypes as types

__all__ = ["DEFAULT_READS_PER_MINUTE", "DEFAULT_WRITES_PER_MINUTE", "EXIT_HELP", "build_parser"]

DEFAULT_READS_PER_MINUTE = 100  # under the platform's ~120 reads a minute per key
DEFAULT_WRITES_PER_MINUTE = 15  # under its ~20 writes

EXIT_HELP = """\
exit statuses:
  0    everything asked for succeeded
  1    something failed that running again will not fix (integrity, 404, a failed
       backup, no space, --fail-on-no-backup...)
  2    usage error (bad arguments, malformed key, unreadable --from-file...)
  3    the key was refused (401 invalid or expired, 402, 403 e.g. a read-only key)
  75   something failed that a retry may fix (network, timeout, 5xx, 429, lock held,
       a backup still running): retry later
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); partial downloads are kept
"""

_Group = argparse.ArgumentParser | Any  # a parser or an argument group


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand: the subcommand's copies default to
    # SUPPRESS so that, when not given there, they leave the top-level value alone.
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="log to stderr (-vv: debug); keys and signatures are never logged",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print nothing on success (errors still go to stderr; --json still prints)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (UTC times)"
    )


def _subcommand(commands: Any, name: str, summary: str, **kwargs: Any) -> Any:
    sub = commands.add_parser(name, help=summary, description=summary, **kwargs)
    _add_verbosity(sub, top=False)
    return sub


def _add_connection(
    parser: argparse.ArgumentParser, *, timeout_alias: bool = True, sharded: bool = False
) -> None:
    # --timeout is the request timeout's short name, except for `backup`, where it is how
    # long --wait waits (API.md section 10): there only --request-timeout sets this one.
    shared = ", divided by N with --shard K/N" if sharded else ""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (default: $OEC_API_KEY; prefer it or --api-key-file: arguments show in ps)",
    )
    group.add_argument(
        "--api-key-file",
        type=Path,
        metavar="FILE",
        default=os.environ.get("OEC_API_KEY_FILE") or None,
        help="read the API key from FILE, e.g. a mounted secret (default: $OEC_API_KEY_FILE)",
    )
    group.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: $OEC_BASE_URL or the platform)"
    )
    group.add_argument(
        "--request-timeout",
        *(["--timeout"] if timeout_alias else []),
        dest="timeout",
        type=types.seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds before an API call fails or a silent download is resumed (default 30)",
    )
    group.add_argument(
        "--retries",
        type=types.non_negative_int,
        default=3,
        metavar="N",
        help="retries of a failed API read (network, 429, 5xx) after the first try (default 3)",
    )
    group.add_argument(
        "--requests-per-minute",
        type=types.non_negative_int,
        metavar="N",
        help=f"pace API reads under N per --rate-window (default {DEFAULT_READS_PER_MINUTE}"
        f"{shared}; 0: no pacing)",
    )
    group.add_argument(
        "--writes-per-minute",
        type=types.non_negative_int,
        metavar="N",
        help=f"pace API writes (taking a backup) under N (default {DEFAULT_WRITES_PER_MINUTE}"
        f"{shared}; 0: no pacing)",
    )
    group.add_argument(
        "--rate-window",
        type=types.seconds,
        default=60.0,
        metavar="SECONDS",
        help="the length of the platform's rate-limit window (default 60: a calendar minute)",
    )
    group.add_argument(
        "--max-connections",
        type=types.positive_int,
        default=16,
        metavar="N",
        help="storage connections open at once, overall (default 16)",
    )
    group.add_argument(
        "--max-connections-per-host",
        type=types.positive_int,
        default=8,
        metavar="N",
        help="storage connections open at once to one host (default 8)",
    )


def _add_download(parser: argparse.ArgumentParser, *, dest_required: bool = True) -> None:
    group = parser.add_argument_group("download")
    group.add_argument(
        "--dest",
        required=dest_required,
        type=Path,
        metavar="DIR",
        help="destination folder (must exist, see --mkdir): files land in "
        "DIR/<environment_id>/<backup_id>/",
    )
    group.add_argument(
        "--mkdir",
        action="store_true",
        help="create --dest (and its parents) if missing; without it a missing --dest is an "
        "error, as it may be a disk that failed to mount",
    )
    group.add_argument(
        "--strict", action="store_true", help="fail files the manifest has no checksum for"
    )
    group.add_argument(
        "--reverify", action="store_true", help="re-hash files of already complete downloads"
    )
    group.add_argument(
        "--min-free-space",
        type=types.size,
        default=0,
        metavar="SIZE",
        help="keep this much free on the destination disk, e.g. 10G, 512MiB (default 0)",
    )
    group.add_argument(
        "--lock-timeout",
        type=types.non_negative_seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another process downloading the same backup "
        "(default 0: fail at once, exit 75)",
    )
    group.add_argument(
        "--transfer-retries",
        type=types.non_negative_int,
        default=5,
        metavar="N",
        help="failed attempts in a row (no byte received) before a file gives up (default 5)",
    )
    group.add_argument(
        "--expires-in",
        type=types.expires_in,
        default=3600,
        metavar="SECONDS",
        help="lifetime asked for the presigned URLs, 300 to 86400 (default 3600; renewed "
        "when they run out)",
    )
    group.add_argument(
        "--segments",
        type=types.positive_int,
        default=4,
        metavar="N",
        help="connections for one large file on slow links (default 4; 1: never split)",
    )
    group.add_argument(
        "--segment-threshold",
        type=types.size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="files smaller than this use one connection (default 64MiB)",
    )


def _add_selection(parser: argparse.ArgumentParser, *, explicit: bool) -> None:
    group = parser.add_argument_group(
        "selection (a union without duplicates, then --exclude, then --shard)"
    )
    if explicit:
        group.add_argument(
            "--from-file",
            metavar="FILE",
            help="read environment ids from FILE, one per line, # comments ('-': stdin)",
        )
    group.add_argument(
        "--project",
        dest="projects",
        action="append",
        default=[],
        type=types.environment_id,
        metavar="PROJECT_ID",
        help="the environments of this project (repeatable)",
    )
    if explicit:
        group.add_argument(
            "--all",
            dest="everything",
            action="store_true",
            help="every environment the key sees, in every project",
        )
    group.add_argument(
        "--exclude",
        dest="excluded",
        action="append",
        default=[],
        type=types.environment_id,
        metavar="ENV_ID",
        help="leave this environment out (repeatable)",
    )
    group.add_argument(
        "--shard",
        type=types.shard,
        metavar="K/N",
        help="only the environments shard K of N takes (rendezvous hashing; 0 <= K < N), "
        'e.g. --shard "$JOB_COMPLETION_INDEX/8"',
    )


def _add_policy(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "retention (restic forget semantics, by each backup's creation time, per environment)"
    )
    for rule, what in (
        ("last", "the N newest backups"),
        ("hourly", "the newest backup of each of the last N hours that have one"),
        ("daily", "the newest backup of each of the last N days that have one"),
        ("weekly", "the newest backup of each of the last N ISO weeks that have one"),
        ("monthly", "the newest backup of each of the last N months that have one"),
        ("yearly", "the newest backup of each of the last N years that have one"),
    ):
        group.add_argument(
            f"--keep-{rule}",
            type=types.retention_count,
            default=0,
            metavar="N",
            help=f"keep {what} ('unlimited': every one)",
        )
    group.add_argument(
        "--keep-within",
        type=types.duration,
        metavar="DURATION",
        help="keep every backup taken within DURATION (e.g. 7d) before the newest one",
    )


def _add_monitoring(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("monitoring")
    group.add_argument(
        "--report", type=Path, metavar="FILE", help="write the --json result to FILE, atomically"
    )
    group.add_argument(
        "--metrics-file",
        type=Path,
        metavar="FILE",
        help="write Prometheus textfile-collector metrics to FILE (*.prom), atomically",
    )
    group.add_argument(
        "--ping-url",
        default=os.environ.get("OEC_PING_URL"),
        metavar="URL",
        help="healthchecks.io-style URL: URL/start, then URL or URL/<exit status> "
        "(default: $OEC_PING_URL; prefer the variable, the URL is a secret)",
    )


def _add_backup_commands(commands: Any) -> None:
    listing = _subcommand(commands, "list", "list an environment's backups, newest first")
    listing.add_argument("env_id", metavar="ENV_ID", help="the environment")
    listing.add_argument("--status", help="only backups with this status (e.g. completed)")
    listing.add_argument(
        "--type", dest="backup_type", help="only backups of this type (e.g. scheduled)"
    )
    listing.add_argument(
        "--limit", type=types.positive_int, default=20, help="at most N backups (default 20)"
    )
    _add_json(listing)
    _add_connection(listing)

    urls = _subcommand(commands, "urls", "print a backup's presigned download URLs (secrets)")
    urls.add_argument("backup_id", metavar="BACKUP_ID", help="the backup")
    urls.add_argument(
        "--expires-in",
        type=types.expires_in,
        default=3600,
        metavar="SECONDS",
        help="how long the URLs stay valid, 300 to 86400 seconds (default 3600)",
    )
    _add_json(urls)
    _add_connection(urls)

    download = _subcommand(commands, "download", "download and verify one backup")
    download.add_argument("backup_id", metavar="BACKUP_ID", help="the backup")
    _add_download(download)
    _add_json(download)
    _add_connection(download)


def _add_fleet_commands(commands: Any) -> None:
    pull = _subcommand(
        commands,
        "pull",
        "download the newest completed backup of each environment selected",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pull.add_argument(
        "env_ids", nargs="*", metavar="ENV_ID", help="environments to pull (see also --all)"
    )
    _add_selection(pull, explicit=True)
    pull.add_argument(
        "--fail-on-no-backup",
        action="store_true",
        help="an environment with no completed backup yet fails the run (exit 1); "
        "by default it is reported as no_backup and the run succeeds",
    )
    pull.add_argument(
        "--concurrency",
        type=types.positive_int,
        default=4,
        metavar="N",
        help="environments at once (default 4)",
    )
    _add_download(pull)
    _add_policy(pull)
    _add_monitoring(pull)
    _add_json(pull)
    _add_connection(pull, sharded=True)

    _add_backup_command(commands)

    envs = _subcommand(
        commands, "list-environments", "list the environments the key sees (what --all pulls)"
    )
    _add_selection(envs, explicit=False)
    envs.add_argument("--status", help="only environments with this status (e.g. running)")
    _add_json(envs)
    _add_connection(envs)


def _add_backup_command(commands: Any) -> None:
    backup = _subcommand(
        commands,
        "backup",
        "take a backup of an environment now (an rw key); optionally wait and download it",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backup.add_argument("env_id", metavar="ENV_ID", help="the environment")
    backup.add_argument(
        "--no-filestore",
        action="store_true",
        help="back up the database only (default: database and filestore)",
    )
    backup.add_argument("--notes", metavar="TEXT", help="a note kept with the backup")
    backup.add_argument("--retention", metavar="TYPE", help="the platform's retention class for it")
    backup.add_argument(
        "--wait",
        action="store_true",
        help="wait until it completes, with a progress line (exit 1 if it fails, 75 on --timeout)",
    )
    backup.add_argument(
        "--timeout",
        dest="wait_timeout",
        type=types.seconds,
        default=3600.0,
        metavar="SECONDS",
        help="how long --wait waits at most (default 3600); the backup goes on after that",
    )
    backup.add_argument(
        "--download",
        action="store_true",
        help="once completed, download and verify it into --dest (implies --wait)",
    )
    _add_download(backup, dest_required=False)
    _add_json(backup)
    _add_connection(backup, timeout_alias=False)


def _add_archive_commands(commands: Any) -> None:
    verify = _subcommand(
        commands, "verify", "re-hash local backups against their manifests (offline, no key)"
    )
    verify.add_argument(
        "path", type=Path, metavar="PATH", help="destination root, environment or backup folder"
    )
    verify.add_argument(
        "--strict", action="store_true", help="a file the manifest has no checksum for fails"
    )
    _add_json(verify)

    status = _subcommand(
        commands, "status", "each environment's newest backup on disk (offline, no key)"
    )
    status.add_argument(
        "dest", type=Path, metavar="DEST", help="destination root (or one environment folder)"
    )
    status.add_argument(
        "--max-age",
        type=types.duration,
        metavar="DURATION",
        help="exit 1 if an environment's newest verified backup is older (e.g. 26h, 7d)",
    )
    _add_json(status)

    prune = _subcommand(
        commands, "prune", "delete local backups a retention policy does not keep (offline)"
    )
    prune.add_argument(
        "dest", type=Path, metavar="DEST", help="destination root (or one environment folder)"
    )
    _add_policy(prune)
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted, delete nothing"
    )
    _add_json(prune)


def _add_simulator_commands(commands: Any) -> None:
    demo = _subcommand(commands, "demo", "discover and pull a simulated organisation")
    demo.add_argument(
        "--dest",
        type=Path,
        metavar="DIR",
        help="where to put the files (default: ./demo-backups, emptied at each run)",
    )
    demo.add_argument(
        "--environments",
        type=types.positive_int,
        default=6,
        metavar="N",
        help="environments with backups in the organisation (default 6)",
    )
    demo.add_argument("--seed", type=int, default=7, help="names the simulated world (default 7)")
    _add_json(demo)

    simulate = _subcommand(
        commands,
        "simulate",
        "run the platform simulator on loopback; prints export lines for the client",
    )
    simulate.add_argument(
        "--port", type=int, default=0, help="the API's port (default: any free port)"
    )
    simulate.add_argument("--seed", type=int, default=0, help="names the simulated world")
    simulate.add_argument(
        "--environments",
        type=types.positive_int,
        default=3,
        metavar="N",
        help="environments in the organisation (default 3)",
    )
    simulate.add_argument(
        "--dump-size",
        type=types.size,
        default=8 * 1024 * 1024,
        metavar="SIZE",
        help="each backup's database dump, e.g. 4096, 8MiB (default 8MiB)",
    )
    simulate.add_argument(
        "--projects",
        type=types.positive_int,
        metavar="N",
        help="projects holding them (default: one per four environments)",
    )
    simulate.add_argument(
        "--fresh",
        action="store_true",
        help="give each environment a completed backup taken an hour ago (the seeded ones "
        "are from May 2026), so that status --max-age passes",
    )
    simulate.add_argument(
        "--rate-window",
        type=types.seconds,
        default=60.0,
        metavar="SECONDS",
        help="the rate-limit window (default 60: 120 reads and 20 writes a minute per key)",
    )
    simulate.add_argument(
        "--no-rate-limit", action="store_true", help="no read or write budget at all"
    )


class _Parser(argparse.ArgumentParser):
    """argparse's parser with a short usage error: the message and where the options
    are listed, not the whole usage block (20 lines for ``pull``, mailed by cron)."""

    commands: argparse._SubParsersAction[_Parser] | None = None

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's, but an unknown option is reported by the subcommand it was
        given to (whose ``--help`` lists the options it has)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = getattr(parsed, "command", None)
            sub = self.commands.choices.get(chosen) if self.commands and chosen else None
            (sub or self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The ``oec-backups`` parser (every subcommand, every option with a help line)."""
    parser = _Parser(
        prog="oec-backups",
        description="List, download, verify and prune OEC.sh backups; take them on demand.",
        epilog="The API key is read from $OEC_API_KEY (or --api-key-file) and never "
        "printed.\n\n" + EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbosity(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = commands
    _add_backup_commands(commands)
    _add_fleet_commands(commands)
    _add_archive_commands(commands)
    _add_simulator_commands(commands)
    return parser
