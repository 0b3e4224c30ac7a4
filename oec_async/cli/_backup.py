"""``oec-backups backup ENV_ID``: take a backup on demand (API.md section 10), and with
``--wait`` follow it to the end, with ``--download`` fetch and verify it.

The POST is sent once (the SDK never resends it once it may have reached the server).
While waiting, a progress line: live on a terminal, a line per change of state
otherwise. The result is the JSON document ``download`` and ``pull`` print, its one row
carrying the backup as the API last described it (``backup``).
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from oec_async._config import coerce_uuid
from oec_async.cli._archive import point_latest
from oec_async.cli._connect import make_client
from oec_async.cli._exit import EXIT_OK, Failed, exit_status_for
from oec_async.cli._options import download_options, prepare_dest
from oec_async.cli._output import Output
from oec_async.cli._progress import ProgressView
from oec_async.cli._render import document, download_lines, format_size, model_json, pull_row
from oec_async.download import BackupDownload, PullResult
from oec_async.errors import (
    BackupFailedError,
    ConfigurationError,
    ConflictError,
    OECError,
    WaitTimeoutError,
)
from oec_async.models import Backup

__all__ = ["cmd_backup"]


def _check(args: argparse.Namespace) -> None:
    if args.dest is not None and not args.download:
        raise ConfigurationError("--dest is where --download puts the backup: give both")
    if args.download and args.dest is None:
        raise ConfigurationError("--download needs --dest DIR")


class _Taken:
    """What became of the backup asked for: the backup as last seen, its download, the
    error that ended the command (if one did)."""

    def __init__(self, env_id: uuid.UUID) -> None:
        self.env_id = env_id
        self.backup: Backup | None = None
        self.download: BackupDownload | None = None
        self.error: OECError | None = None

    def row(self) -> dict[str, Any]:
        backup_id = self.backup.id if self.backup is not None else None
        row = pull_row(PullResult(self.env_id, backup_id, self.download, self.error))
        row["status"] = "failed" if self.error is not None else "ok"
        row["ok"] = self.error is None
        row["backup"] = model_json(self.backup) if self.backup is not None else None
        # A 409 names the backup already running: a script can wait for that one instead.
        running = self.error.backup_id if isinstance(self.error, ConflictError) else None
        row["running_backup_id"] = str(running) if running is not None else None
        return row


async def _take(args: argparse.Namespace, taken: _Taken, view: ProgressView) -> None:
    async with make_client(args) as client:
        view.note(f"asking for a backup of environment {taken.env_id}")
        taken.backup = await client.create_backup(
            taken.env_id,
            include_filestore=not args.no_filestore,
            retention_type=args.retention,
            notes=args.notes,
        )
        if not (args.wait or args.download):
            return
        view.note(f"backup {taken.backup.id} created: waiting for it to complete")
        try:
            taken.backup = await client.wait_for_backup(
                taken.backup, timeout=args.wait_timeout, progress=view.on_backup
            )
        except (BackupFailedError, WaitTimeoutError) as exc:
            taken.backup = exc.backup or taken.backup
            raise
        if args.download:
            view.note(f"downloading backup {taken.backup.id} into {args.dest}")
            taken.download = await client.download_backup(
                taken.backup, args.dest, progress=view.on_file, options=download_options(args)
            )


def _say(taken: _Taken, args: argparse.Namespace, out: Output) -> None:
    backup = taken.backup
    if backup is None:
        return
    sizes = ", ".join(
        f"{name} {format_size(size)}"
        for name, size in (("database", backup.database_size), ("filestore", backup.filestore_size))
        if size is not None
    )
    task = f" (task {backup.task_id})" if backup.task_id else ""
    out.print(
        f"backup {backup.id} of environment {backup.environment_id}: {backup.status}{task}"
        + (f"; {sizes}" if sizes and backup.is_completed else "")
    )
    if taken.download is not None:
        for line in download_lines(taken.download):
            out.print(line)
    elif not (args.wait or args.download) and taken.error is None:
        out.print(f"it runs on the platform: `oec-backups list {backup.environment_id}` shows it")


async def cmd_backup(args: argparse.Namespace, out: Output) -> None:
    """``backup ENV_ID``: exit 0 once the backup is asked for (with ``--wait``: completed;
    with ``--download``: on disk, verified); 1 if it failed, 75 if it is still running
    after ``--timeout`` or another one is running (409), 3 for a read-only key."""
    env_id = coerce_uuid(args.env_id, "ENV_ID")
    _check(args)
    if args.download:
        download_options(args)  # a bad option fails before the POST, not after the backup
        prepare_dest(args.dest, mkdir=args.mkdir)
    started = datetime.now(UTC)
    taken = _Taken(env_id)
    view = out.progress()
    try:
        await _take(args, taken, view)
    except ConfigurationError:
        raise
    except OECError as exc:
        taken.error = exc
    finally:
        view.close()
    if taken.download is not None:
        await point_latest(taken.download, out)
    status = exit_status_for([taken.error] if taken.error is not None else [])
    out.json_document(
        document(
            "backup",
            [taken.row()],
            started=started,
            finished=datetime.now(UTC),
            exit_status=status,
        )
    )
    _say(taken, args, out)
    if taken.error is not None:
        out.error(taken.error)
    if status != EXIT_OK:
        raise Failed(status)
