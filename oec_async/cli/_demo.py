"""``oec-backups demo``: the main job, end to end, against the built-in simulator.

Starts the simulator on loopback with a handful of environments, makes a few of them
misbehave the way real storage does (a dropped connection, URLs expiring mid-transfer)
and one of them broken for good (its dump is corrupt in storage), then pulls the newest
backup of every environment with progress bars and prints the summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

from rich.console import Console

from oec_async._client import OECClient
from oec_async.cli._render import format_size
from oec_async.download import DownloadOptions
from oec_async.errors import IntegrityError
from oec_async.testing import OECSimulator

__all__ = ["run_demo"]

_MiB = 1024 * 1024
DEFAULT_DEST = Path("demo-backups")


async def run_demo(args: argparse.Namespace, out: Console) -> None:
    from oec_async.cli._app import _Failed, report_pull, run_pull  # noqa: PLC0415 - cycle

    dest: Path = args.dest or DEFAULT_DEST
    if args.dest is None:
        # The demo's own folder: emptied so that every run shows a real pull (an earlier
        # run's complete downloads would otherwise be skipped, correctly, with 0 bytes).
        await asyncio.to_thread(shutil.rmtree, dest, ignore_errors=True)
    simulator = OECSimulator(
        seed=args.seed,
        environments=args.environments,
        backups_per_environment=6,
        dump_size=40 * _MiB,
        filestore_size=4 * _MiB,
        bandwidth=25 * _MiB,  # per connection, so the bars have something to show
    )
    async with simulator as sim:
        envs = sim.environment_ids
        latest = {env: sim.latest_completed(env).id for env in envs}
        broken = envs[-1]
        sim.faults.corrupt(1000, backup_id=latest[broken], times=None)
        if len(envs) > 2:
            sim.faults.drop_after(12 * _MiB, backup_id=latest[envs[0]])
            sim.faults.expire_after(20 * _MiB, backup_id=latest[envs[1]])
        if not args.json:
            out.print(
                f"Simulator on {sim.base_url}: pulling the newest backup of {len(envs)} "
                f"environments into {dest}\n(one connection drops, one set of URLs expires "
                f"mid-transfer, and environment {broken} is broken on purpose)\n"
            )
        async with OECClient(sim.api_key, sim.base_url) as client:
            results = await run_pull(
                client,
                envs,
                dest,
                concurrency=3,
                options=DownloadOptions(),
                quiet=args.quiet or args.json,
            )
    try:
        report_pull(results, args, out)
    except _Failed:
        expected = [r.environment_id for r in results if not r.ok] == [broken] and isinstance(
            results[-1].error, IntegrityError
        )
        if not expected:
            raise
    if args.json:
        return
    good = [r for r in results if r.ok and r.download is not None]
    out.print(f"\n{len(good)} of {len(results)} backups verified and in {dest}:")
    for result in good[:2]:
        assert result.download is not None  # noqa: S101
        for file in result.download.files:
            out.print(f"  {file.path}  {format_size(file.size)}  sha256 {file.sha256[:16]}…")
    if len(good) > 2:
        out.print(f"  … and {len(good) - 2} more backup folders")
    out.print(
        f"The broken environment failed alone ({type(results[-1].error).__name__}); "
        "nothing unverified was left under a final name."
    )
