"""What the command line prints as results: tables for people, JSON for machines.

One JSON shape for every command that fetches backups (``download``, ``pull``,
``backup``): a top-level object ``{"command", "results": [...], "summary": {...}}``.
Each result is one environment's row (``environment_id``, ``backup_id``, ``status``:
``ok`` | ``no_backup`` | ``failed``, ``ok``, ``elapsed``, ``error``, ``download``); the
summary counts them. Times are UTC with an offset (``+00:00``), paths are absolute.
Results go to stdout, everything else to stderr, so ``--json`` output pipes cleanly.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import attrs
from rich.console import Console
from rich.table import Table

from oec_async._convert import unstructure
from oec_async._units import format_size as _format_size
from oec_async.cli._exit import kind_of
from oec_async.cli._messages import error_text
from oec_async.download import BackupDownload, PullResult
from oec_async.errors import APIError
from oec_async.models import Backup, Environment

__all__ = [
    "absolute",
    "backup_rows",
    "document",
    "download_json",
    "error_json",
    "format_size",
    "model_json",
    "print_backups",
    "print_environments",
    "print_json",
    "print_summary",
    "pull_row",
    "short_error",
    "utc",
]

STATUS_SHOWN = {"ok": "ok", "no_backup": "no backup", "failed": "FAILED"}


def format_size(size: int | None) -> str:
    """Binary units (``1.5 KiB``), ``-`` for unknown."""
    return "-" if size is None else _format_size(size)


def utc(moment: datetime | None) -> str | None:
    """``2026-05-22T18:00:00+00:00``: a time in UTC, with its offset."""
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def absolute(path: Path) -> str:
    """A path as printed: absolute (not resolved: a symlinked DEST stays as given)."""
    return str(path.absolute())


def model_json(model: Any) -> dict[str, Any]:
    """An attrs model as JSON-ready data, its datetimes in UTC."""
    return {
        field.name: utc(value)
        if isinstance(value := getattr(model, field.name), datetime)
        else unstructure(value)
        for field in attrs.fields(type(model))
    }


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """``value`` as indented JSON on stdout (or ``stream``)."""
    print(json.dumps(value, indent=2, default=str), file=stream or sys.stdout)


def error_json(error: BaseException | None) -> dict[str, Any] | None:
    """``{"type", "message", "kind"}``: the error's class, its message in flag names,
    and whether a retry may help (``retryable``, ``refused``, ``permanent``...)."""
    if error is None:
        return None
    return {"type": type(error).__name__, "message": error_text(error), "kind": kind_of(error)}


def short_error(error: BaseException | None, width: int = 70) -> str:
    """An error in a table cell: its class and the start of its reason (for an API error
    the server's message, not the method and path, which the full line on stderr has)."""
    if error is None:
        return ""
    reason = error.message if isinstance(error, APIError) else error_text(error)
    text = f"{type(error).__name__}: {reason}"
    return text if len(text) <= width else text[: width - 1] + "…"


def download_lines(download: BackupDownload) -> list[str]:
    """What ``download`` and ``backup --download`` print about the backup on disk: its
    folder and state, then what was found wrong with an earlier copy and repaired."""
    state = "verified" if download.verified else "NOT verified (no manifest checksum)"
    note = ""
    if download.skipped:
        from_record = all(f.evidence == "record" for f in download.files)
        checked = "; checked when downloaded, --reverify re-hashes" if from_record else ""
        note = f" (already complete, nothing transferred{checked})"
    lines = [f"{download.directory}: {len(download.files)} files, {state}{note}"]
    lines += [f"repaired: {problem}" for problem in download.repaired]
    return lines


def download_json(download: BackupDownload | None) -> dict[str, Any] | None:
    """A backup on disk: its folder, its files, what this run transferred."""
    if download is None:
        return None
    return {
        "directory": absolute(download.directory),
        "verified": download.verified,
        "skipped": download.skipped,
        "repaired": list(download.repaired),
        "size": download.size,
        "bytes_transferred": download.bytes_transferred,
        "files": [
            {
                "artifact": f.artifact,
                "path": absolute(f.path),
                "size": f.size,
                "sha256": f.sha256,
                "verified": f.verified,
                "evidence": f.evidence,
                "resumed_from": f.resumed_from,
                "bytes_transferred": f.bytes_transferred,
            }
            for f in download.files
        ],
    }


def pull_row(result: PullResult) -> dict[str, Any]:
    """One environment's row of a ``results`` list."""
    return {
        "environment_id": str(result.environment_id),
        "backup_id": str(result.backup_id) if result.backup_id else None,
        "status": result.status,
        "ok": result.ok,
        "elapsed": round(result.elapsed, 3),
        "error": error_json(result.error),
        "download": download_json(result.download),
    }


def document(
    command: str,
    rows: list[dict[str, Any]],
    *,
    started: datetime,
    finished: datetime,
    exit_status: int,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON result of ``download``, ``pull`` and ``backup``: ``results`` (one row
    each) and a ``summary`` that counts them (``extra`` joins the summary)."""
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUS_SHOWN}
    downloads = [row["download"] for row in rows if row.get("download")]
    return {
        "command": command,
        "results": rows,
        "summary": {
            "environments": len(rows),
            **counts,
            "size": sum(d["size"] for d in downloads),
            "bytes_transferred": sum(d["bytes_transferred"] for d in downloads),
            "started_at": utc(started),
            "finished_at": utc(finished),
            "elapsed": round((finished - started).total_seconds(), 3),
            "exit_status": exit_status,
            **extra,
        },
    }


def backup_rows(backups: Iterable[Backup]) -> list[dict[str, Any]]:
    """Backups as JSON rows (UTC times)."""
    return [model_json(b) for b in backups]


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def print_backups(backups: Sequence[Backup], console: Console) -> None:
    """The table of ``list``: one backup a row (times in UTC)."""
    table = Table(title=None, show_lines=False)
    for column in ("id", "status", "type", "created (UTC)", "database", "filestore", "verified"):
        table.add_column(column, overflow="fold")
    for backup in backups:
        table.add_row(
            str(backup.id),
            str(backup.status),
            str(backup.backup_type or "-"),
            _when(backup.created_at),
            format_size(backup.database_size),
            format_size(backup.filestore_size),
            "yes" if backup.is_verified else "no",
        )
    console.print(table)


def print_environments(
    envs: Sequence[Environment], projects: Mapping[uuid.UUID, str], console: Console
) -> None:
    """The table of ``list-environments``: one environment a row."""
    table = Table(show_lines=False)
    for column in ("id", "name", "status", "project", "odoo", "branch"):
        table.add_column(column, overflow="fold")
    for env in envs:
        project = projects.get(env.project_id) if env.project_id else None
        table.add_row(
            str(env.id),
            env.name or "-",
            str(env.status or "-"),
            project or (str(env.project_id) if env.project_id else "-"),
            env.odoo_version or "-",
            env.branch or "-",
        )
    console.print(table)


def print_summary(results: Sequence[PullResult], console: Console) -> None:
    """The summary table of ``pull`` and ``download``: one environment a row."""

    # On a narrow terminal, ids are shortened (the --json output always has them whole).
    def ident(value: uuid.UUID | None) -> str:
        if value is None:
            return "-"
        return str(value) if console.width >= 170 else f"{str(value)[:8]}…"

    table = Table(show_lines=False)
    for column in ("environment", "backup", "status", "size", "verified", "time", "error"):
        table.add_column(column, overflow="fold")
    for result in results:
        download = result.download
        verified = "-"
        if download is not None:
            verified = "yes" if download.verified else "no"
            if download.skipped:
                verified += " (already there)"
            if download.repaired:
                verified += " (repaired)"
        table.add_row(
            ident(result.environment_id),
            ident(result.backup_id),
            STATUS_SHOWN[result.status],
            format_size(download.size) if download else "-",
            verified,
            f"{result.elapsed:.1f}s",
            short_error(result.error) if result.status == "failed" else "",
            style={"failed": "red", "no_backup": "yellow"}.get(result.status),
        )
    console.print(table)
