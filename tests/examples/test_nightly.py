"""README's nightly cron setup, run as written: ``oec-backups simulate`` in the
background, ``examples/oec-nightly`` twice against it (pull --all with retention, a
report and metrics, verify, the dead-man check), then the simulator stopped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

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
    env = child_env(sim_tmp)
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
