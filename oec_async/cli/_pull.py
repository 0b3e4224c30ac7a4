"""``pull``: select the environments (API.md section 9), download the newest completed
backup of each, and report; the pulling half is shared with ``demo``."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from oec_async._client import OECClient
from oec_async.cli._archive import PullAftercare
from oec_async.cli._commands import report_results, run_status
from oec_async.cli._connect import make_client
from oec_async.cli._exit import EXIT_FAILED, EXIT_OK, Failed
from oec_async.cli._options import download_options, prepare_dest
from oec_async.cli._output import Output
from oec_async.cli._progress import ProgressView
from oec_async.cli._render import absolute, pull_row
from oec_async.cli._select import Selection
from oec_async.download import DownloadOptions, PullResult
from oec_async.errors import ConfigurationError

__all__ = ["cmd_pull", "run_pull"]


async def run_pull(
    client: OECClient,
    env_ids: Sequence[uuid.UUID],
    dest: Path,
    *,
    concurrency: int,
    options: DownloadOptions,
    view: ProgressView,
) -> list[PullResult]:
    """The newest backup of each environment, with ``view`` told of every step."""
    view.note(
        f"pulling {len(env_ids)} environment(s) into {absolute(dest)}: "
        "asking for each one's newest completed backup"
    )
    return await client.pull_latest(
        env_ids,
        dest,
        concurrency=concurrency,
        progress=view.on_file,
        batch_progress=view.on_batch,
        options=options,
    )


async def _select(
    selection: Selection, client: OECClient, view: ProgressView, out: Output
) -> Sequence[uuid.UUID]:
    if selection.discovers:
        what = "every project" if selection.everything else f"{len(selection.projects)} project(s)"
        view.note(f"discovering the environments of {what}")
    env_ids = await selection.resolve(
        client, lambda count: view.note(f"discovering environments: {count} found")
    )
    if not env_ids:
        shard = f" in shard {selection.shard}" if selection.shard else ""
        out.warn(f"no environment to pull{shard}")
    return env_ids


async def cmd_pull(args: argparse.Namespace, out: Output) -> None:
    """``pull``: exit 0 when every environment selected was pulled (or has no backup
    yet, unless ``--fail-on-no-backup``), else the status of what failed (see _exit)."""
    started = datetime.now(UTC)
    # Latest pointers, --keep-* prune, --report, --metrics-file and --ping-url.
    async with PullAftercare(args) as aftercare:
        selection = Selection.from_args(args, out)
        if selection.empty:
            raise ConfigurationError(
                "no environments: give ENV_ID arguments, --from-file, --project or --all"
            )
        options = download_options(args)
        prepare_dest(args.dest, mkdir=args.mkdir)
        view = out.progress(batch=True)
        try:
            async with make_client(args) as client:
                env_ids = await _select(selection, client, view, out)
                results = await run_pull(
                    client,
                    env_ids,
                    args.dest,
                    concurrency=args.concurrency,
                    options=options,
                    view=view,
                )
        finally:
            view.close()
        await aftercare.after_pull(results)
        status = run_status(
            results,
            fail_on_no_backup=args.fail_on_no_backup,
            also=EXIT_FAILED if aftercare.errors else EXIT_OK,
        )
        aftercare.document = report_results(
            "pull",
            results,
            out,
            started=started,
            status=status,
            rows=aftercare.rows([pull_row(r) for r in results]),
            fail_on_no_backup=args.fail_on_no_backup,
            shard=str(args.shard) if args.shard else None,
        )
        if status:
            raise Failed(status)
