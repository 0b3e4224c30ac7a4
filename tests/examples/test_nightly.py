"""README's nightly cron setup, run as written: ``oec-backups simulate`` in the
background, ``examples/oec-nightly`` twice against it (pull --all, a report and metrics,
verify, prune, the dead-man check, a healthchecks ping for the whole job), then the
simulator stopped; and the script's pings when a step after the pull fails."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from oec_async.testing import OECSimulator, SimulatorFactory
from tests._support import serve_pings
from tests.cli._helpers import child_env

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- tests/examples/test_nightly.py runs this block -->"


def readme_block() -> str:
    part = (ROOT / "README.md").read_text().split(MARKER, 1)[1]
    found = re.search(r"```sh\n(.*?)```", part, re.DOTALL)
    assert found is not None
    return found.group(1)


async def test_the_nightly_script_runs_against_the_simulator_as_readme_shows(
    tmp_path: Path,
) -> None:
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "oec-nightly", tmp_path / "examples")
    sim_tmp = tmp_path / "sim-tmp"
    sim_tmp.mkdir()
    async with serve_pings() as pings:
        env = child_env(sim_tmp, OEC_PING_URL=f"{pings.base_url}/check")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        process = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            readme_block(),
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()

    assert process.returncode == 0, output
    simulator = {"simulator running; Ctrl-C to stop", "simulator stopped"}  # its stderr
    nightly = [line for line in output.splitlines() if line not in simulator]
    assert nightly == ["nightly: exit 0", "nightly: exit 0"], output  # --quiet: nothing else
    assert pings.paths() == ["/check/start", "/check/0"] * 2  # the job's, not the pull's
    environments = [
        line.split()[2]
        for line in (tmp_path / "sim.env").read_text().splitlines()
        if line.startswith("# environment ")
    ]
    assert len(environments) == 3
    backups = tmp_path / "backups"
    for env_id in environments:
        assert (backups / env_id / "latest").is_symlink()
    report = json.loads((backups / "last-pull.json").read_text())
    assert report["summary"]["ok"] == 3
    assert report["summary"]["bytes_transferred"] == 0  # the second night: nothing new
    metrics = (tmp_path / "textfile" / "oec_backups.prom").read_text()
    samples = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples}
    assert samples["oec_backups_run_exit_status"] == 0
    for _ in range(100):  # the simulator, stopped by kill, removes its generated files
        if not any(sim_tmp.iterdir()):
            break
        await asyncio.sleep(0.1)
    assert list(sim_tmp.iterdir()) == []


async def run_nightly(
    sim: OECSimulator, tmp_path: Path, ping_url: str
) -> asyncio.subprocess.Process:
    """``examples/oec-nightly`` as cron runs it, against ``sim``."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (tmp_path / "textfile").mkdir()
    env = child_env(
        scratch,
        OEC_BASE_URL=sim.base_url,
        OEC_API_KEY=sim.api_key,
        OEC_PING_URL=ping_url,
        DEST=str(tmp_path / "backups"),
        TEXTFILE=str(tmp_path / "textfile"),
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(ROOT / "examples" / "oec-nightly"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    await asyncio.wait_for(process.communicate(), 120)
    return process


async def test_a_failed_dead_man_check_after_a_good_pull_is_the_job_s_ping(
    oec_simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    # Without --fresh, the simulator's backups are months old: the pull succeeds, the
    # dead-man check (status --max-age 26h) fails, and healthchecks must hear of it.
    sim = await oec_simulator_factory(seed=8, environments=2, dump_size=4096)
    (tmp_path / "backups").mkdir()
    async with serve_pings() as pings:
        process = await run_nightly(sim, tmp_path, f"{pings.base_url}/check")

    assert process.returncode == 1
    assert pings.paths() == ["/check/start", "/check/1"]
    report = json.loads((tmp_path / "backups" / "last-pull.json").read_text())
    assert report["summary"]["ok"] == 2  # the pull itself went well
