"""``list``, ``urls``, ``download`` and ``list-environments``: one API question each (or
one backup downloaded), its answer printed as a table or as JSON."""

from __future__ import annotations

import argparse
import enum
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from oec_async._config import coerce_uuid
from oec_async.cli._archive import point_latest
from oec_async.cli._connect import make_client
from oec_async.cli._exit import EXIT_OK, exit_status_for, worst
from oec_async.cli._options import download_options, prepare_dest
from oec_async.cli._output import Output
from oec_async.cli._render import (
    absolute,
    backup_rows,
    document,
    download_lines,
    model_json,
    print_backups,
    print_environments,
    print_summary,
    pull_row,
)
from oec_async.cli._select import Selection, apply_selection
from oec_async.download import PullResult
from oec_async.models import Backup, BackupStatus, BackupType, Environment, EnvironmentStatus

__all__ = [
    "cmd_download",
    "cmd_list",
    "cmd_list_environments",
    "cmd_urls",
    "report_results",
    "run_status",
    "warn_unknown",
]


def warn_unknown(out: Output, flag: str, value: str | None, known: type[enum.Enum]) -> None:
    """A filter value the platform does not document is sent as is (it may know more),
    with a warning listing the values it does document."""
    values = [str(member.value) for member in known]
    if value is not None and value not in values:
        out.warn(f"{flag} {value!r} is not one the API documents ({', '.join(values)}); sent as is")


async def cmd_list(args: argparse.Namespace, out: Output) -> None:
    """``list ENV_ID``: backups newest first, at most ``--limit``; says when the limit
    cut the list."""
    env_id = coerce_uuid(args.env_id, "ENV_ID")
    warn_unknown(out, "--status", args.status, BackupStatus)
    warn_unknown(out, "--type", args.backup_type, BackupType)
    page_size = min(args.limit, 100)
    backups: list[Backup] = []
    async with make_client(args) as client:
        page_number, total, pages = 1, 0, 0
        while len(backups) < args.limit:
            page = await client.list_backups(
                env_id,
                status=args.status,
                backup_type=args.backup_type,
                page=page_number,
                page_size=page_size,
            )
            total, pages = page.total, page.total_pages
            backups += page.items[: args.limit - len(backups)]
            if not page.has_next:
                break
            page_number += 1
    truncated = total > len(backups)
    out.json_document(
        {
            "results": backup_rows(backups),
            "summary": {
                "count": len(backups),
                "total": total,
                "limit": args.limit,
                "truncated": truncated,
                "page_size": page_size,
                "pages_read": page_number,
                "total_pages": pages,
                "status": args.status,
                "backup_type": args.backup_type,
            },
        }
    )
    if not backups:
        out.warn("no backups match")
        return
    if out.tables:
        print_backups(backups, out.console)
    if truncated:
        out.warn(f"showing the newest {len(backups)} of {total} backups (--limit {args.limit})")


async def cmd_urls(args: argparse.Namespace, out: Output) -> None:
    """``urls BACKUP_ID``: the presigned URLs, with a warning that they are secrets."""
    backup_id = coerce_uuid(args.backup_id, "BACKUP_ID")
    async with make_client(args) as client:
        urls = await client.get_download_urls(backup_id, expires_in=args.expires_in)
    out.warn(
        "these URLs are secrets: anyone holding one can download the file "
        f"until {urls.expires_at.astimezone(UTC).isoformat() if urls.expires_at else 'it expires'}"
    )
    fields = {
        "database_url": urls.database_url,
        "filestore_url": urls.filestore_url,
        "manifest_url": urls.manifest_url,
    }
    out.json_document(model_json(urls) | fields)
    if out.tables:
        for name, url in fields.items():
            print(f"{name.removesuffix('_url')}: {url if url is not None else '(none)'}")


async def cmd_download(args: argparse.Namespace, out: Output) -> None:
    """``download BACKUP_ID --dest DIR``: one backup, verified; the same JSON shape as
    ``pull`` (one result)."""
    backup_id = coerce_uuid(args.backup_id, "BACKUP_ID")
    options = download_options(args)
    prepare_dest(args.dest, mkdir=args.mkdir)
    started = datetime.now(UTC)
    view = out.progress()
    view.note(f"downloading backup {backup_id} into {absolute(args.dest)}")
    try:
        async with make_client(args) as client:
            result = await client.download_backup(
                backup_id, args.dest, progress=view.on_file, options=options
            )
    finally:
        view.close()
    pulled = PullResult(result.environment_id, result.backup_id, result, None)
    out.json_document(
        document(
            "download",
            [pull_row(pulled)],
            started=started,
            finished=datetime.now(UTC),
            exit_status=EXIT_OK,
        )
    )
    await point_latest(result, out)
    for line in download_lines(result):
        out.print(line)
    for file in result.files:
        out.print(f"  {file.path.name}  sha256={file.sha256}")


async def cmd_list_environments(args: argparse.Namespace, out: Output) -> None:
    """``list-environments``: what ``pull --all`` (with the same ``--project``,
    ``--exclude`` and ``--shard``) would pull."""
    warn_unknown(out, "--status", args.status, EnvironmentStatus)
    selection = Selection.from_args(args, out)
    projects: dict[uuid.UUID, str] = {}
    async with make_client(args) as client:
        if selection.projects:
            project_ids = list(dict.fromkeys(selection.projects))
        else:
            async for project in client.iter_projects():
                projects[project.id] = project.name or str(project.id)
            project_ids = list(projects)
        envs: list[Environment] = [
            env async for env in client.iter_environments(project_ids, status=args.status)
        ]
    wanted = set(apply_selection((e.id for e in envs), selection.excluded, selection.shard))
    shown = [env for env in envs if env.id in wanted]
    out.json_document(
        {
            "results": [model_json(env) for env in shown],
            "summary": {
                "count": len(shown),
                "listed": len(envs),
                "projects": list(map(str, selection.projects)) or [str(p) for p in projects],
                "status": args.status,
                "shard": str(args.shard) if args.shard else None,
            },
        }
    )
    if out.tables and shown:
        print_environments(shown, projects, out.console)
    if not shown:
        out.warn("no environments match")


def run_status(
    results: Sequence[PullResult], *, fail_on_no_backup: bool = False, also: int = EXIT_OK
) -> int:
    """The exit status of a pull (``also``: the status of what else failed). An
    environment without any completed backup yet (``no_backup``) is not a failure,
    unless ``fail_on_no_backup``."""
    failures = [r.error for r in results if r.status == "failed" and r.error is not None]
    if fail_on_no_backup:
        failures += [r.error for r in results if r.status == "no_backup" and r.error is not None]
    return worst(exit_status_for(failures), also)


def report_results(
    command: str,
    results: Sequence[PullResult],
    out: Output,
    *,
    started: datetime,
    status: int,
    rows: list[dict[str, Any]] | None = None,
    fail_on_no_backup: bool = False,
    failures_shown: bool = True,
    **summary: Any,
) -> dict[str, Any]:
    """Print the summary table (or the JSON document) and, when ``failures_shown``, one
    line per failure (one warning per environment without backup); return the JSON
    document."""
    body = document(
        command,
        rows if rows is not None else [pull_row(r) for r in results],
        started=started,
        finished=datetime.now(UTC),
        exit_status=status,
        **summary,
    )
    out.json_document(body)
    if out.tables:
        print_summary(results, out.console)
    for result in results if failures_shown else ():
        if result.status == "failed" or (fail_on_no_backup and result.status == "no_backup"):
            out.error(f"{result.environment_id}: {result.error}")
        elif result.status == "no_backup":
            out.warn(f"{result.environment_id}: has no completed backup yet (not a failure)")
    return body
