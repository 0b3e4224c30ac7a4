"""Every file in examples/ runs, against the simulator, as a user runs it (``python
examples/x.py`` with ``OEC_BASE_URL`` and ``OEC_API_KEY`` set); and README shows each one
as it is in examples/, so README's code is code that runs (and that mypy checks)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oec_async.testing import OECSimulator, SimulatorFactory, SimulatorSettings
from tests.cli._helpers import child_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KiB = 1024


@pytest.fixture
async def sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """A small organisation whose environments were backed up an hour ago, and whose
    backups taken on demand complete at once."""
    settings = SimulatorSettings(backup_queue_seconds=0, backup_run_seconds=0)
    simulator = await oec_simulator_factory(
        seed=8, environments=4, backups_per_environment=3, dump_size=16 * KiB, settings=settings
    )
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    for env in simulator.environment_ids:
        simulator.add_backup(env, backup_type="scheduled", created_at=an_hour_ago)
    return simulator


async def run(*args: str | Path, env: dict[str, str], cwd: Path = ROOT) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *map(str, args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_every_example_runs_against_the_simulator(sim: OECSimulator, tmp_path: Path) -> None:
    (tmp_path / "child-tmp").mkdir()
    env = child_env(tmp_path / "child-tmp", OEC_BASE_URL=sim.base_url, OEC_API_KEY=sim.api_key)
    first = str(sim.environment_ids[0])
    fleet = tmp_path / "fleet"
    runs = {
        "list_backups.py": run(EXAMPLES / "list_backups.py", env=env),
        "discover.py": run(EXAMPLES / "discover.py", env=env),
        "backup_now.py": run(EXAMPLES / "backup_now.py", first, tmp_path / "now", env=env),
        "download_latest.py": run(
            EXAMPLES / "download_latest.py", first, tmp_path / "latest", env=env
        ),
        "pull_fleet.py 0/2": run(EXAMPLES / "pull_fleet.py", fleet, env=env | {"SHARD": "0/2"}),
        "pull_fleet.py 1/2": run(EXAMPLES / "pull_fleet.py", fleet, env=env | {"SHARD": "1/2"}),
        "simulator.py": run(EXAMPLES / "simulator.py", env=env),
        "test_nightly_job.py": run(
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            EXAMPLES / "test_nightly_job.py",
            env=env,
        ),
    }
    results = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
    results["archive_care.py"] = await run(EXAMPLES / "archive_care.py", fleet, env=env)

    for name, (status, stdout, stderr) in results.items():
        assert status == 0, f"{name}: exit {status}\n{stdout}\n{stderr}"
        assert "Traceback" not in stderr, name
        assert sim.api_key.split("_", 3)[3] not in stdout + stderr, name
    ran = {name.split()[0] for name in results}
    assert ran == {p.name for p in EXAMPLES.glob("*.py")}  # every example file, no other
    assert "X-Amz-Signature" not in results["list_backups.py"][1]  # URLs shown redacted
    assert first in results["discover.py"][1]
    assert "verified" in results["backup_now.py"][1].splitlines()[-1]
    assert "1 passed" in results["test_nightly_job.py"][1]
    assert {p.name for p in fleet.iterdir()} == {str(e) for e in sim.environment_ids}
    assert "would delete" in results["archive_care.py"][1]


def readme_examples() -> dict[str, str]:
    """README's code blocks that say which example they are, by name."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"<!-- examples/(\S+) -->\n```[a-z]*\n(.*?)```", text, re.DOTALL)
    return dict(found)


def test_readme_shows_every_example_as_it_is_in_examples() -> None:
    shown = readme_examples()
    assert set(shown) == {p.name for p in EXAMPLES.iterdir() if p.is_file()}
    for name, code in shown.items():
        assert code == (EXAMPLES / name).read_text(), f"README's {name} differs from the file"


def test_make_demo_in_a_fresh_clone_installs_the_cli_extra_and_not_the_dev_tools(
    tmp_path: Path,
) -> None:
    make = shutil.which("make")
    assert make is not None
    fresh = subprocess.run(
        [make, "--no-print-directory", "-n", "-C", str(ROOT), "demo", f"VENV={tmp_path / 'v'}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pip install -q -e '.[cli]'" in fresh
    assert ".[dev]" not in fresh
    assert fresh.strip().endswith("-m oec_async demo")
