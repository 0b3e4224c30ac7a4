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
import uuid
from pathlib import Path

from rich.console import Console

from oec_async._client import OECClient
from oec_async._redact import redact_url
from oec_async.cli._render import format_size, print_backups
from oec_async.download import DownloadOptions
from oec_async.errors import IntegrityError
from oec_async.testing import OECSimulator, SimulatorSettings

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
        # per connection, so the bars have something to show
        settings=SimulatorSettings(bandwidth=25 * _MiB),
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
            out.print(f"Simulator of the platform on {sim.base_url}\n")
        async with OECClient(sim.api_key, sim.base_url) as client:
            if not args.json:
                await _show_api(client, envs[0], out)
                out.print(
                    f"[bold]3. Pull[/] the newest backup of all {len(envs)} environments into "
                    f"{dest}\n   (one connection drops, one set of URLs expires mid-transfer, "
                    f"and environment {broken} is broken on purpose)\n"
                )
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
    out.print(f"\n{len(good)} of {len(results)} backups verified, in {dest}/:")
    for result in good:
        assert result.download is not None  # noqa: S101
        files = ", ".join(f"{f.path.name} ({format_size(f.size)})" for f in result.download.files)
        out.print(f"  {result.download.directory.relative_to(dest)}/  {files}")
    out.print(
        f"The broken environment failed alone ({type(results[-1].error).__name__}); "
        "nothing unverified was left under a final name."
    )


async def _show_api(client: OECClient, env_id: uuid.UUID, out: Console) -> None:
    """The SDK's API half: a listing, and the newest completed backup's URLs."""
    page = await client.list_backups(env_id, page_size=6)
    out.print(f"[bold]1. List[/] environment {env_id}: {page.total} backups, newest first")
    print_backups(page.items, out)
    latest = await client.latest_backup(env_id)
    assert latest is not None  # noqa: S101 - the simulator always has one
    urls = await client.get_download_urls(latest.id)
    out.print(f"\n[bold]2. Download URLs[/] of the newest completed backup {latest.id}")
    out.print("   (presigned, secret: shown redacted, as the SDK's repr and logs show them)")
    for name in ("database_url", "filestore_url", "manifest_url"):
        url = getattr(urls, name)
        out.print(f"   {name}: {redact_url(url) if url else None}")
    out.print(f"   expires_at: {urls.expires_at}\n")
