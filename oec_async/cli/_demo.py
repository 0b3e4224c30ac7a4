"""``oec-backups demo``: the main job, end to end, against the built-in simulator.

Starts the simulator on loopback with an organisation of a few projects, discovers every
environment (``pull --all``), makes a few of them misbehave the way real storage does (a
dropped connection, URLs expiring mid-transfer), one broken for good (its dump is
corrupt in storage) and one too new to have a backup yet, then pulls the newest backup
of every environment with progress bars and prints the summary table. It exits 0 when
exactly what was staged happened.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from oec_async._client import OECClient
from oec_async._redact import redact_url
from oec_async.cli._commands import report_results, run_status
from oec_async.cli._exit import EXIT_OK, Failed
from oec_async.cli._output import Output
from oec_async.cli._pull import run_pull
from oec_async.cli._render import format_size, print_backups, print_environments
from oec_async.cli._select import Selection
from oec_async.download import DownloadOptions, PullResult
from oec_async.errors import IntegrityError
from oec_async.testing import OECSimulator, SimulatorSettings

__all__ = ["cmd_demo"]

_MiB = 1024 * 1024
DEFAULT_DEST = Path("demo-backups")


def _staged(results: list[PullResult], broken: uuid.UUID, new: uuid.UUID) -> bool:
    """Only the broken environment failed (integrity), only the new one has no backup."""
    failed = [r for r in results if r.status == "failed"]
    absent = [r.environment_id for r in results if r.status == "no_backup"]
    return (
        [r.environment_id for r in failed] == [broken]
        and isinstance(failed[0].error, IntegrityError)
        and absent == [new]
    )


async def cmd_demo(args: argparse.Namespace, out: Output) -> None:
    """``demo``: exit 0 when only what was staged went wrong."""
    started = datetime.now(UTC)
    dest: Path = args.dest or DEFAULT_DEST
    if args.dest is None:
        # The demo's own folder: emptied so that every run shows a real pull (an earlier
        # run's complete downloads would otherwise be skipped, correctly, with 0 bytes).
        await asyncio.to_thread(shutil.rmtree, dest, ignore_errors=True)
    simulator = OECSimulator(
        seed=args.seed,
        environments=args.environments,
        projects=max(1, min(3, args.environments // 2)),
        backups_per_environment=6,
        dump_size=40 * _MiB,
        filestore_size=4 * _MiB,
        # per connection, so the bars have something to show
        settings=SimulatorSettings(bandwidth=25 * _MiB),
    )
    async with simulator as sim:
        seeded = sim.environment_ids
        new = sim.add_environment(
            backups=0, status="deploying", name="new-staging", project_id=sim.project_ids[-1]
        )
        broken = seeded[-1]
        sim.faults.corrupt(1000, backup_id=sim.latest_completed(broken).id, times=None)
        if len(seeded) > 2:
            sim.faults.drop_after(12 * _MiB, backup_id=sim.latest_completed(seeded[0]).id)
            sim.faults.expire_after(20 * _MiB, backup_id=sim.latest_completed(seeded[1]).id)
        out.print(f"Simulator of the platform on {sim.base_url}\n")
        async with OECClient(sim.api_key, sim.base_url) as client:
            if out.tables:
                await _show_discovery(client, out)
                await _show_api(client, seeded[0], out)
                out.heading(
                    "4. Pull --all",
                    ": the newest backup of every environment into "
                    f"{dest}\n   (one connection drops, one set of URLs expires mid-transfer, "
                    f"environment {broken} is broken on purpose,\n   and {new} is too new "
                    "to have a backup)\n",
                )
            view = out.progress(batch=True)
            try:
                env_ids = await Selection(everything=True).resolve(client)
                results = await run_pull(
                    client, env_ids, dest, concurrency=3, options=DownloadOptions(), view=view
                )
            finally:
                view.close()
    status = run_status(results)
    if status and not _staged(results, broken, new):
        report_results("pull", results, out, started=started, status=status)
        raise Failed(status)
    # What was staged is the demo succeeding: with --quiet, it prints nothing at all.
    report_results(
        "pull", results, out, started=started, status=EXIT_OK, failures_shown=not out.quiet
    )
    good = [r.download for r in results if r.download is not None]
    out.print(f"\n{len(good)} of {len(results)} environments pulled and verified, in {dest}/:")
    for download in good:
        files = ", ".join(f"{f.path.name} ({format_size(f.size)})" for f in download.files)
        out.print(f"  {download.directory.relative_to(dest)}/  {files}")
    out.print(
        "The broken environment failed alone (IntegrityError): nothing unverified was left\n"
        "under a final name. The new one is reported as having no backup yet, which is not\n"
        "a failure (pull --fail-on-no-backup makes it one)."
    )


async def _show_discovery(client: OECClient, out: Output) -> None:
    """What ``list-environments`` shows: every project's environments."""
    names = {p.id: p.name or str(p.id) async for p in client.iter_projects()}
    envs = [env async for env in client.iter_environments(list(names))]
    out.heading(
        "1. Discover",
        f" the organisation: {len(names)} projects, {len(envs)} "
        "environments (oec-backups list-environments)",
    )
    print_environments(envs, names, out.console)


async def _show_api(client: OECClient, env_id: uuid.UUID, out: Output) -> None:
    """The SDK's API half: a listing, and the newest completed backup's URLs."""
    page = await client.list_backups(env_id, page_size=6)
    out.heading("\n2. List", f" environment {env_id}: {page.total} backups, newest first")
    print_backups(page.items, out.console)
    latest = await client.latest_backup(env_id)
    assert latest is not None  # noqa: S101 - the simulator always has one
    urls = await client.get_download_urls(latest.id)
    out.heading("\n3. Download URLs", f" of the newest completed backup {latest.id}")
    out.print("   (presigned, secret: shown redacted, as the SDK's repr and logs show them)")
    for name in ("database_url", "filestore_url", "manifest_url"):
        url = getattr(urls, name)
        out.print(f"   {name}: {redact_url(url) if url else None}")
    out.print(f"   expires_at: {urls.expires_at}\n")
