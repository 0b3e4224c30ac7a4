"""What the command line shows: progress (bars on a terminal, log lines otherwise),
tables, JSON. Progress goes to stderr, results to stdout, so ``--json`` output stays
clean to pipe."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from oec_async import _units as units
from oec_async._convert import unstructure
from oec_async.download import BackupDownload, BatchProgress, ProgressEvent, PullResult
from oec_async.errors import APIError
from oec_async.models import Backup

__all__ = [
    "ProgressView",
    "backup_rows",
    "format_size",
    "make_progress_view",
    "print_backups",
    "print_json",
    "print_summary",
    "result_json",
    "short_error",
]


def format_size(size: int | None) -> str:
    return "-" if size is None else units.format_size(size)


def _short(value: uuid.UUID | None) -> str:
    return str(value)[:8] if value is not None else "-"


class ProgressView(Protocol):
    def on_file(self, event: ProgressEvent) -> None: ...
    def on_batch(self, snapshot: BatchProgress) -> None: ...
    def close(self) -> None: ...


class QuietView:
    def on_file(self, event: ProgressEvent) -> None:
        pass

    def on_batch(self, snapshot: BatchProgress) -> None:
        pass

    def close(self) -> None:
        pass


class BarsView:
    """Live bars: one per file in flight, and a total."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=None),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self.tasks: dict[tuple[uuid.UUID, str], TaskID] = {}
        self.total = self.progress.add_task("[bold]total", total=None)
        self.progress.start()

    def on_file(self, event: ProgressEvent) -> None:
        key = (event.backup_id, event.artifact)
        if event.kind in ("done", "skipped"):
            task = self.tasks.pop(key, None)
            if task is not None:
                self.progress.remove_task(task)
            return
        task = self.tasks.get(key)
        if task is None:
            label = f"{_short(event.environment_id)} {event.artifact}"
            task = self.tasks[key] = self.progress.add_task(label, total=event.total)
        self.progress.update(task, completed=event.bytes_done, total=event.total)

    def on_batch(self, snapshot: BatchProgress) -> None:
        label = (
            f"[bold]total[/] {snapshot.environments_done}/{snapshot.environments_total} envs"
            + (
                f", [red]{snapshot.environments_failed} failed[/]"
                if snapshot.environments_failed
                else ""
            )
        )
        self.progress.update(
            self.total,
            description=label,
            completed=snapshot.bytes_done,
            total=snapshot.bytes_total or None,
        )

    def close(self) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.progress.stop()


class LinesView:
    """Plain, greppable lines for cron mails and CI logs (no terminal)."""

    def __init__(self, stream: TextIO, interval: float = 5.0) -> None:
        self.stream = stream
        self.interval = interval
        self._last_total = 0.0

    def _say(self, text: str) -> None:
        print(time.strftime("%H:%M:%S ") + text, file=self.stream, flush=True)

    def on_file(self, event: ProgressEvent) -> None:
        name = f"{_short(event.environment_id)}/{_short(event.backup_id)} {event.artifact}"
        if event.kind == "start" and event.bytes_done == event.resumed_from:
            resumed = f", resuming at {format_size(event.bytes_done)}" if event.bytes_done else ""
            self._say(f"{name}: started ({format_size(event.total)}{resumed})")
        elif event.kind == "restart":
            self._say(f"{name}: restarting from zero")
        elif event.kind == "retry":
            self._say(f"{name}: interrupted at {format_size(event.bytes_done)}, retrying")
        elif event.kind == "done":
            self._say(f"{name}: done ({format_size(event.bytes_done)})")
        elif event.kind == "skipped":
            self._say(f"{name}: already complete")

    def on_batch(self, snapshot: BatchProgress) -> None:
        now = time.monotonic()
        finished = snapshot.environments_done == snapshot.environments_total
        if not finished and now - self._last_total < self.interval:
            return
        self._last_total = now
        self._say(
            f"total: {snapshot.environments_done}/{snapshot.environments_total} environments"
            f" ({snapshot.environments_failed} failed), {format_size(snapshot.bytes_done)}"
            f" of {format_size(snapshot.bytes_total)}, {format_size(int(snapshot.throughput))}/s"
        )

    def close(self) -> None:
        pass


def make_progress_view(*, quiet: bool, stream: TextIO | None = None) -> ProgressView:
    stream = stream or sys.stderr
    if quiet:
        return QuietView()
    if stream.isatty():
        return BarsView(Console(file=stream))
    return LinesView(stream)


# -- results ---------------------------------------------------------------------------


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, default=str), file=stream or sys.stdout)


def _download_json(download: BackupDownload | None) -> dict[str, Any] | None:
    if download is None:
        return None
    return {
        "directory": str(download.directory),
        "verified": download.verified,
        "skipped": download.skipped,
        "size": download.size,
        "bytes_transferred": download.bytes_transferred,
        "files": [
            {
                "artifact": f.artifact,
                "path": str(f.path),
                "size": f.size,
                "sha256": f.sha256,
                "verified": f.verified,
                "resumed_from": f.resumed_from,
                "bytes_transferred": f.bytes_transferred,
            }
            for f in download.files
        ],
    }


def error_json(error: BaseException | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": type(error).__name__, "message": str(error)}


def short_error(error: BaseException | None, width: int = 70) -> str:
    """An error in a table cell: its class and the start of its reason (for an API error
    the server's message, not the method and path, which the full line on stderr has)."""
    if error is None:
        return ""
    reason = error.message if isinstance(error, APIError) else str(error)
    text = f"{type(error).__name__}: {reason}"
    return text if len(text) <= width else text[: width - 1] + "…"


def result_json(result: PullResult) -> dict[str, Any]:
    return {
        "environment_id": str(result.environment_id),
        "backup_id": str(result.backup_id) if result.backup_id else None,
        "ok": result.ok,
        "elapsed": round(result.elapsed, 3),
        "error": error_json(result.error),
        "download": _download_json(result.download),
    }


def download_json(download: BackupDownload) -> dict[str, Any]:
    body = _download_json(download)
    assert body is not None  # noqa: S101
    return {
        "environment_id": str(download.environment_id),
        "backup_id": str(download.backup_id),
        **body,
    }


def backup_rows(backups: Iterable[Backup]) -> list[dict[str, Any]]:
    return [unstructure(b) for b in backups]


def print_backups(backups: Sequence[Backup], console: Console) -> None:
    table = Table(title=None, show_lines=False)
    for column in ("id", "status", "type", "created", "database", "filestore", "verified"):
        table.add_column(column, overflow="fold")
    for backup in backups:
        created = backup.created_at.strftime("%Y-%m-%d %H:%M") if backup.created_at else "-"
        table.add_row(
            str(backup.id),
            str(backup.status),
            str(backup.backup_type or "-"),
            created,
            format_size(backup.database_size),
            format_size(backup.filestore_size),
            "yes" if backup.is_verified else "no",
        )
    console.print(table)


def print_summary(results: Sequence[PullResult], console: Console) -> None:
    # On a narrow terminal, ids are shortened (the --json output always has them whole).
    def ident(value: uuid.UUID | None) -> str:
        if value is None:
            return "-"
        return str(value) if console.width >= 160 else f"{str(value)[:8]}…"

    table = Table(show_lines=False)
    for column in ("environment", "backup", "size", "verified", "time", "error"):
        table.add_column(column, overflow="fold")
    for result in results:
        download = result.download
        verified = "-"
        if download is not None:
            verified = "yes" if download.verified else "no"
            if download.skipped:
                verified += " (already there)"
        table.add_row(
            ident(result.environment_id),
            ident(result.backup_id),
            format_size(download.size) if download else "-",
            verified,
            f"{result.elapsed:.1f}s",
            short_error(result.error),
            style=None if result.ok else "red",
        )
    console.print(table)
