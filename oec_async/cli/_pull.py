"""Pulling environments and reporting the result: shared by ``pull`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from oec_async._client import OECClient
from oec_async.cli._exit import Failed
from oec_async.cli._render import make_progress_view, print_json, print_summary, result_json
from oec_async.download import DownloadOptions, PullResult

__all__ = ["report_pull", "run_pull"]


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


def report_pull(
    results: Sequence[PullResult],
    args: argparse.Namespace,
    out: Console,
    rows: list[dict[str, Any]] | None = None,
) -> None:
    """The summary table (or ``--json`` rows), then one error line per failure; raises
    :class:`~oec_async.cli._exit.Failed` if anything failed."""
    if args.json:
        print_json(rows if rows is not None else [result_json(r) for r in results])
    else:
        print_summary(results, out)
    if not all(r.ok for r in results):
        for result in results:
            if result.error is not None:
                print(f"error: {result.environment_id}: {result.error}", file=sys.stderr)
        raise Failed
