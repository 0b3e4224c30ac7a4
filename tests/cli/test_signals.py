"""SIGTERM (what Kubernetes, systemd and docker send to stop a process) ends a pull as
Ctrl-C does: a message, the partial download kept for the next run, exit 143, and the
metrics saying so."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from oec_async.testing import OECSimulator
from tests.cli._helpers import CLI, KiB

MiB = 1024 * KiB


async def test_sigterm_stops_a_pull_like_ctrl_c_keeping_its_partial_download(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = cli_sim.environment_ids[0]
    backup = cli_sim.latest_completed(env)
    cli_sim.update_backup(backup.id, dump_size=4 * MiB)
    cli_sim.configure(bandwidth=1 * MiB)  # per connection: seconds to go
    dest, metrics = tmp_path / "dest", tmp_path / "oec.prom"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oec_async",
        "pull",
        str(env),
        "--dest",
        str(dest),
        "--mkdir",
        "--metrics-file",
        str(metrics),
        "--segments",
        "1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli.env(),
    )
    try:
        await asyncio.wait_for(cli_sim.wait_for_bytes(backup.id, "database", 512 * KiB), 30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 143, stderr.decode()
    assert "terminated: partial downloads are kept and resume on the next run" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert (dest / str(env) / f"{backup.id}.part").is_dir()  # the work folder, kept
    assert "oec_backups_run_exit_status 143" in metrics.read_text()

    cli_sim.configure(bandwidth=None)
    again = await cli("download", backup.id, "--dest", dest, "--json")

    assert again.returncode == 0, again
    [row] = again.results()
    database = next(f for f in row["download"]["files"] if f["artifact"] == "database")
    assert database["resumed_from"] > 0  # what the terminated run had received
    assert database["verified"] is True
