"""``verify``, ``status``, ``prune``, and what ``pull`` does after downloading.

The three archive commands need no key and make no network call: they read (and
``prune`` deletes in) the folder given, through :mod:`oec_async.archive`. ``pull`` gets
``--keep-*`` (prune each environment once its new backup is verified), ``--report``,
``--metrics-file`` and ``--ping-url``, all handled by :class:`PullAftercare`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.table import Table

from oec_async._redact import redact_text
from oec_async._units import format_size
from oec_async.archive import (
    LATEST_NAME,
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
    prune,
    prune_environment,
    update_latest,
    write_json_report,
    write_metrics,
)
from oec_async.archive._inventory import environment_inventory, newest
from oec_async.cli._exit import Failed, exit_status_of
from oec_async.cli._output import Output
from oec_async.cli._render import print_json
from oec_async.download import BackupDownload, PullResult
from oec_async.errors import ConfigurationError

__all__ = [
    "COMMANDS",
    "PullAftercare",
    "cmd_prune",
    "cmd_status",
    "cmd_verify",
    "prune_json",
    "status_json",
    "verify_json",
]

Command = Callable[[argparse.Namespace, Output], Coroutine[Any, Any, None]]
_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def _policy(args: argparse.Namespace) -> RetentionPolicy | None:
    policy = RetentionPolicy(
        **{rule: getattr(args, f"keep_{rule}") for rule in _RULES}, within=args.keep_within
    )
    return None if policy.empty else policy


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
        "touched": result.touched,
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


async def cmd_verify(args: argparse.Namespace, out: Output) -> None:
    """``verify PATH``: exit 1 when any folder has a problem, or when there is none."""
    results: list[VerifyResult] = []
    for result in iter_verify(args.path, strict=args.strict):
        results.append(result)
        for problem in result.problems:
            _error(f"{result.directory}: {problem}")
        if result.touched:
            out.warn(
                f"{result.directory}: the hashes match, but file times changed since the "
                "download verified them: status, prune and latest count it as not verified "
                f"until `oec-backups download {result.backup_id}` re-checks it"
            )
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


def _print_status(statuses: Sequence[EnvironmentSummary], now: datetime, out: Output) -> None:
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


async def cmd_status(args: argparse.Namespace, out: Output) -> None:
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


def _print_prune(result: PruneResult, out: Output) -> None:
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


async def cmd_prune(args: argparse.Namespace, out: Output) -> None:
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

    async def run(args: argparse.Namespace, out: Output) -> None:
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


async def point_latest(download: BackupDownload, out: Output) -> None:
    """After ``download`` or ``backup --download``: the environment's ``latest`` follows
    (it points at the newest verified backup there, this one or a newer one)."""
    try:
        await asyncio.to_thread(update_latest, download.directory.parent)
    except OSError as exc:
        out.warn(f"{download.directory.parent / LATEST_NAME}: {exc.strerror or exc}")


class PullAftercare:
    """Everything ``pull`` does around the download itself::

        async with PullAftercare(args) as aftercare:    # pings URL/start
            results = await ...pull...
            await aftercare.after_pull(results)          # latest pointers, --keep-* prune
            aftercare.document = ...the JSON result, rows from aftercare.rows(...)...
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
        self.out = Output(args)
        self.started = datetime.now(UTC)
        self.results: list[PullResult] | None = None
        self.prunes: dict[uuid.UUID, PruneResult] = {}
        self.notes: dict[uuid.UUID, str] = {}
        self.latest: dict[uuid.UUID, uuid.UUID | None] = {}
        self.errors: list[str] = []
        #: The ``--json`` result, written to ``--report`` on the way out.
        self.document: dict[str, Any] | None = None

    async def __aenter__(self) -> PullAftercare:
        if self.pinger is not None and not await self.pinger.start():
            self.out.warn(self.pinger.last_error or "the start ping failed")
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
            self.out.warn(note)
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
        return rows

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
            no_backup=result.status == "no_backup",
            last_success=finished if result.ok else (on_disk.completed_at if on_disk else None),
            backup_created=on_disk.created_at if on_disk else None,
            size=download.size if download else (on_disk.size if on_disk else None),
            verified=download.verified if download else (on_disk.verified if on_disk else None),
            duration=result.elapsed,
            transferred=download.bytes_transferred if download else 0,
        )

    def _write(self, code: int) -> int:
        finished = datetime.now(UTC)
        if self.report is not None and self.document is not None:
            try:
                write_json_report(self.report, self.document)
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
        failed = [r for r in results if r.status == "failed"]
        absent = sum(r.status == "no_backup" for r in results)
        lines = [
            f"oec-backups pull: exit {code}; {len(results)} environment(s), "
            f"{len(results) - len(failed) - absent} ok, {absent} without backup, "
            f"{len(failed)} failed; "
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
            self.out.warn(self.pinger.last_error or "the final ping failed")
        if final != code and exc is None:
            raise Failed(final)
