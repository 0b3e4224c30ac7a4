"""``verify``, ``status``, ``prune``, and what ``pull`` does after downloading.

The three archive commands need no key and make no network call: they read (and
``prune`` deletes in) the folder given, through :mod:`oec_async.archive`. ``pull`` gets
``--keep-*`` (prune each environment once its new backup is verified), ``--report``,
``--metrics-file`` and ``--ping-url``, all handled by :class:`PullAftercare`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.table import Table

from oec_async._redact import redact_text
from oec_async._units import format_size
from oec_async.archive import (
    UNLIMITED,
    BackupFolder,
    EnvironmentMetrics,
    EnvironmentSummary,
    Pinger,
    PruneResult,
    RetentionPolicy,
    RunMetrics,
    VerifyResult,
    archive_status,
    format_duration,
    iter_verify,
    parse_duration,
    prune,
    prune_environment,
    update_latest,
    write_json_report,
    write_metrics,
)
from oec_async.archive._inventory import environment_inventory, newest
from oec_async.cli._exit import Failed, exit_status_of
from oec_async.cli._render import print_json
from oec_async.download import PullResult
from oec_async.errors import ConfigurationError

__all__ = [
    "COMMANDS",
    "PullAftercare",
    "add_commands",
    "add_pull_args",
    "cmd_prune",
    "cmd_status",
    "cmd_verify",
    "prune_json",
    "status_json",
    "verify_json",
]

Command = Callable[[argparse.Namespace, Console], Coroutine[Any, Any, None]]
_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


# -- arguments -------------------------------------------------------------------------


def _duration(value: str) -> Any:
    try:
        return parse_duration(value)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(value: str) -> int:
    if value.strip().lower() == "unlimited":
        return UNLIMITED
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a count (0 or more) or 'unlimited'") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be a count (0 or more) or 'unlimited'")
    return number


def _add_policy_args(parser: argparse.ArgumentParser) -> None:
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
            type=_count,
            default=0,
            metavar="N",
            help=f"keep {what} ('unlimited': every one)",
        )
    group.add_argument(
        "--keep-within",
        type=_duration,
        metavar="DURATION",
        help="keep every backup taken within DURATION (e.g. 7d) before the newest one",
    )


def _policy(args: argparse.Namespace) -> RetentionPolicy | None:
    policy = RetentionPolicy(
        **{rule: getattr(args, f"keep_{rule}") for rule in _RULES}, within=args.keep_within
    )
    return None if policy.empty else policy


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success (errors on stderr)"
    )


def add_commands(commands: Any) -> None:
    """Register ``verify``, ``status`` and ``prune`` on the subcommand parsers."""
    verify = commands.add_parser(
        "verify", help="re-hash local backups against their manifests (offline, no key)"
    )
    verify.add_argument(
        "path", type=Path, metavar="PATH", help="destination root, environment or backup folder"
    )
    verify.add_argument(
        "--strict", action="store_true", help="a file the manifest has no checksum for fails"
    )
    _add_output_args(verify)

    status = commands.add_parser(
        "status", help="each environment's newest backup on disk (offline, no key)"
    )
    status.add_argument(
        "dest", type=Path, metavar="DEST", help="destination root (or one environment folder)"
    )
    status.add_argument(
        "--max-age",
        type=_duration,
        metavar="DURATION",
        help="exit 1 if an environment's newest verified backup is older (e.g. 26h, 7d)",
    )
    _add_output_args(status)

    prune_parser = commands.add_parser(
        "prune", help="delete local backups a retention policy does not keep (offline, no key)"
    )
    prune_parser.add_argument(
        "dest", type=Path, metavar="DEST", help="destination root (or one environment folder)"
    )
    _add_policy_args(prune_parser)
    prune_parser.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted, delete nothing"
    )
    _add_output_args(prune_parser)


def add_pull_args(pull: argparse.ArgumentParser) -> None:
    """``pull``'s retention and monitoring options."""
    _add_policy_args(pull)
    group = pull.add_argument_group("monitoring")
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


# -- JSON ------------------------------------------------------------------------------


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _age(folder: BackupFolder | None, now: datetime) -> float | None:
    age = folder.age(now) if folder is not None else None
    return round(age.total_seconds(), 3) if age is not None else None


def verify_json(result: VerifyResult) -> dict[str, Any]:
    """One folder of ``verify --json`` (API.md section 11: directory, ok, problems)."""
    return {
        "directory": str(result.directory),
        "ok": result.ok,
        "problems": list(result.problems),
        "environment_id": str(result.environment_id),
        "backup_id": str(result.backup_id),
        "complete": result.complete,
        "verified": result.verified,
        "files_checked": result.files_checked,
        "bytes_checked": result.bytes_checked,
    }


def status_json(status: EnvironmentSummary, now: datetime, stale: bool | None) -> dict[str, Any]:
    """One environment of ``status --json``; ``stale`` is None without ``--max-age``."""
    newest_one, verified = status.newest, status.newest_verified
    return {
        "environment_id": str(status.environment_id),
        "backup_id": str(newest_one.backup_id) if newest_one else None,
        "created_at": _time(newest_one.created_at) if newest_one else None,
        "age_seconds": _age(newest_one, now),
        "size": newest_one.size if newest_one else None,
        "verified": bool(newest_one and newest_one.verified and newest_one.intact),
        "directory": str(newest_one.directory) if newest_one else None,
        "newest_verified": None
        if verified is None
        else {
            "backup_id": str(verified.backup_id),
            "created_at": _time(verified.created_at),
            "age_seconds": _age(verified, now),
            "directory": str(verified.directory),
        },
        "complete": status.complete,
        "incomplete": status.incomplete,
        "stale": stale,
    }


def prune_json(result: PruneResult, policy: RetentionPolicy) -> dict[str, Any]:
    """``prune --json``: kept and deleted folders (API.md section 11), and the details."""
    return {
        "kept": [str(p) for p in result.kept],
        "deleted": [str(p) for p in result.deleted],
        "ignored": [str(p) for p in result.ignored],
        "dry_run": result.dry_run,
        "policy": policy.describe(),
        "bytes_freed": result.bytes_freed,
        "folders": [
            {
                "directory": str(a.directory),
                "environment_id": str(a.environment_id),
                "backup_id": str(a.backup_id),
                "created_at": _time(a.created_at),
                "action": a.action,
                "reasons": list(a.reasons),
                "size": a.size,
            }
            for a in result.actions
        ],
        "errors": list(result.errors),
    }


def _error(text: str) -> None:
    print(f"error: {redact_text(text)}", file=sys.stderr)


# -- verify, status, prune -------------------------------------------------------------


async def cmd_verify(args: argparse.Namespace, out: Console) -> None:
    """``verify PATH``: exit 1 when any folder has a problem, or when there is none."""
    results: list[VerifyResult] = []
    for result in iter_verify(args.path, strict=args.strict):
        results.append(result)
        for problem in result.problems:
            _error(f"{result.directory}: {problem}")
        if not (args.json or args.quiet):
            state = "verified" if result.verified else "intact, not verified (no checksum)"
            detail = (
                f"{result.files_checked} files, {format_size(result.bytes_checked)}, {state}"
                if result.ok
                else f"{len(result.problems)} problem(s)"
            )
            out.print(f"{'ok' if result.ok else 'FAILED':<7}{result.directory}  ({detail})")
    if args.json:
        print_json([verify_json(r) for r in results])
    failed = sum(not r.ok for r in results)
    if not results:
        _error(f"no backup folders under {args.path}")
        raise Failed
    if not (args.json or args.quiet):
        out.print(f"{len(results)} backup folder(s) checked, {failed} with problems")
    if failed:
        raise Failed


def _print_status(statuses: Sequence[EnvironmentSummary], now: datetime, out: Console) -> None:
    table = Table()
    for column in ("environment", "newest backup", "created", "age", "size", "verified"):
        table.add_column(column, overflow="fold")
    for status in statuses:
        folder = status.newest
        age = folder.age(now) if folder is not None else None
        table.add_row(
            str(status.environment_id),
            str(folder.backup_id) if folder else "-",
            folder.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            if folder and folder.created_at
            else "-",
            format_duration(age) if age is not None else "-",
            format_size(folder.size) if folder else "-",
            ("yes" if folder.verified and folder.intact else "no") if folder else "-",
        )
    out.print(table)


async def cmd_status(args: argparse.Namespace, out: Console) -> None:
    """``status DEST``: with ``--max-age``, exit 1 when an environment has no fresh,
    verified backup (or DEST has no environment)."""
    statuses = archive_status(args.dest)
    now = datetime.now(UTC)
    stale: dict[uuid.UUID, bool] = {}
    if args.max_age is not None:
        stale = {s.environment_id: s.stale(args.max_age, now) for s in statuses}
    if args.json:
        print_json([status_json(s, now, stale.get(s.environment_id)) for s in statuses])
    elif not args.quiet and statuses:
        _print_status(statuses, now, out)
    if args.max_age is None:
        return
    if not statuses:
        _error(f"no environment folders in {args.dest}: nothing was backed up there")
        raise Failed
    for status in statuses:
        if not stale[status.environment_id]:
            continue
        verified = status.newest_verified
        age = verified.age(now) if verified is not None else None
        if age is None:
            _error(f"{status.environment_id}: no verified backup on disk")
        else:
            _error(
                f"{status.environment_id}: newest verified backup is {format_duration(age)} old"
                f" (more than {format_duration(args.max_age)})"
            )
    if any(stale.values()):
        raise Failed


def _require_policy(args: argparse.Namespace) -> RetentionPolicy:
    policy = _policy(args)
    if policy is None:
        raise ConfigurationError(
            "give at least one --keep-* option (e.g. --keep-last 7 --keep-daily 14)"
        )
    return policy


def _print_prune(result: PruneResult, out: Console) -> None:
    for action in result.actions:
        created = (
            action.created_at.astimezone().strftime("%Y-%m-%d %H:%M") if action.created_at else "-"
        )
        verb = {"keep": "keep", "ignore": "ignore", "delete": "deleted"}[action.action]
        if result.dry_run and action.action == "delete":
            verb = "would delete"
        out.print(
            f"{verb:<13}{action.directory}  {created}  {format_size(action.size)}"
            f"  {', '.join(action.reasons)}"
        )
    deleted = len(result.deleted)
    what = "would delete" if result.dry_run else "deleted"
    out.print(
        f"{what} {deleted} backup folder(s) ({format_size(result.bytes_freed)}), "
        f"kept {len(result.kept)}, ignored {len(result.ignored)}"
    )


async def cmd_prune(args: argparse.Namespace, out: Console) -> None:
    """``prune DEST --keep-…``: exit 1 when a deletion failed, 2 without any rule."""
    policy = _require_policy(args)
    result = prune(args.dest, policy, dry_run=args.dry_run)
    if args.json:
        print_json(prune_json(result, policy))
    elif not args.quiet:
        _print_prune(result, out)
    for error in result.errors:
        _error(error)
    if result.errors:
        raise Failed


def _disk_errors_reported(command: Command) -> Command:
    """A folder that cannot be read (permissions, I/O error) ends the command with one
    ``error:`` line and exit 1, not a traceback."""

    async def run(args: argparse.Namespace, out: Console) -> None:
        try:
            await command(args, out)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _error(f"{where}{exc.strerror or exc}")
            raise Failed from None

    return run


COMMANDS: dict[str, Command] = {
    "verify": _disk_errors_reported(cmd_verify),
    "status": _disk_errors_reported(cmd_status),
    "prune": _disk_errors_reported(cmd_prune),
}


# -- pull: latest, prune, report, metrics, ping ----------------------------------------


class PullAftercare:
    """Everything ``pull`` does around the download itself::

        async with PullAftercare(args) as aftercare:    # pings URL/start
            results = await ...pull...
            await aftercare.after_pull(results)          # latest pointers, --keep-* prune
            ...print aftercare.rows(results)...
        # on the way out: --report, --metrics-file, then URL or URL/<exit status>

    Whatever ends the command (success, a failed environment, a usage error, Ctrl-C), the
    metrics and the final ping carry the exit status it ends with.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.dest: Path = args.dest
        self.policy = _policy(args)
        self.report: Path | None = args.report
        self.metrics: Path | None = args.metrics_file
        self.pinger = Pinger(args.ping_url) if args.ping_url else None
        self.started = datetime.now(UTC)
        self.results: list[PullResult] | None = None
        self.prunes: dict[uuid.UUID, PruneResult] = {}
        self.notes: dict[uuid.UUID, str] = {}
        self.latest: dict[uuid.UUID, uuid.UUID | None] = {}
        self.errors: list[str] = []
        self._rows: list[dict[str, Any]] = []

    async def __aenter__(self) -> PullAftercare:
        if self.pinger is not None and not await self.pinger.start():
            print(f"warning: {self.pinger.last_error}", file=sys.stderr)
        return self

    def _after_one(self, result: PullResult) -> None:
        environment_dir = self.dest / str(result.environment_id)
        download = result.download
        if download is None or not result.ok:
            return
        if self.policy is not None and download.verified:
            pruned = prune_environment(environment_dir, self.policy)
            self.prunes[result.environment_id] = pruned
            self.errors.extend(pruned.errors)
        elif self.policy is not None:
            self.notes[result.environment_id] = (
                "not pruned: its new backup is not verified (the manifest has no checksum)"
            )
        self.latest[result.environment_id] = update_latest(environment_dir)

    async def after_pull(self, results: list[PullResult]) -> None:
        """Point each pulled environment's ``latest`` at its newest backup and, with
        ``--keep-*``, prune it once its new backup is verified."""
        self.results = results
        for result in results:
            try:
                await asyncio.to_thread(self._after_one, result)
            except OSError as exc:
                self.errors.append(f"{result.environment_id}: {exc.strerror or exc}")
        for note in self.notes.values():
            print(f"warning: {note}", file=sys.stderr)
        for error in self.errors:
            _error(error)

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``pull --json`` rows with what happened after each download."""
        for row in rows:
            env = uuid.UUID(row["environment_id"])
            row["latest"] = str(self.latest[env]) if self.latest.get(env) else None
            pruned = self.prunes.get(env)
            row["prune"] = (
                {"kept": [str(p) for p in pruned.kept], "deleted": [str(p) for p in pruned.deleted]}
                if pruned is not None
                else ({"skipped": self.notes[env]} if env in self.notes else None)
            )
        self._rows = rows
        return rows

    def raise_if_failed(self) -> None:
        """Exit 1 when a prune after the pull failed (already printed by after_pull)."""
        if self.errors:
            raise Failed

    def _environment_metrics(self, result: PullResult, finished: datetime) -> EnvironmentMetrics:
        environment_dir = self.dest / str(result.environment_id)
        folders = (
            environment_inventory(environment_dir, result.environment_id)
            if environment_dir.is_dir()
            else []
        )
        on_disk = newest([f for f in folders if f.intact], verified=True) or newest(
            folders, verified=False
        )
        download = result.download
        return EnvironmentMetrics(
            environment_id=result.environment_id,
            ok=result.ok,
            last_success=finished if result.ok else (on_disk.completed_at if on_disk else None),
            backup_created=on_disk.created_at if on_disk else None,
            size=download.size if download else (on_disk.size if on_disk else None),
            verified=download.verified if download else (on_disk.verified if on_disk else None),
            duration=result.elapsed,
            transferred=download.bytes_transferred if download else 0,
        )

    def _write(self, code: int) -> int:
        finished = datetime.now(UTC)
        if self.report is not None and self.results is not None:
            try:
                write_json_report(self.report, self._rows)
            except OSError as exc:
                _error(f"cannot write --report {self.report}: {exc.strerror or exc}")
                code = code or 1
        if self.metrics is not None:
            try:
                environments = tuple(
                    self._environment_metrics(r, finished) for r in self.results or []
                )
                write_metrics(
                    self.metrics,
                    RunMetrics(
                        started_at=self.started,
                        finished_at=finished,
                        exit_status=code,
                        environments=environments,
                        pruned_folders=sum(len(p.deleted) for p in self.prunes.values()),
                        pruned_bytes=sum(p.bytes_freed for p in self.prunes.values()),
                    ),
                )
            except OSError as exc:
                _error(f"cannot write --metrics-file {self.metrics}: {exc.strerror or exc}")
                code = code or 1
        return code

    def _summary(self, code: int) -> str:
        results = self.results or []
        failed = [r for r in results if not r.ok]
        lines = [
            f"oec-backups pull: exit {code}; {len(results)} environment(s), "
            f"{len(results) - len(failed)} ok, {len(failed)} failed; "
            f"pruned {sum(len(p.deleted) for p in self.prunes.values())} folder(s)"
        ]
        lines += [
            redact_text(f"{r.environment_id}: {type(r.error).__name__}: {r.error}") for r in failed
        ]
        return "\n".join(lines + self.errors) + "\n"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        code = exit_status_of(exc)
        final = await asyncio.to_thread(self._write, code)
        if self.pinger is not None and not await self.pinger.finish(final, self._summary(final)):
            print(f"warning: {self.pinger.last_error}", file=sys.stderr)
        if final != code and exc is None:
            raise Failed
