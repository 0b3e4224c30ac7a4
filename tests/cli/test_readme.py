"""README's command lines run: the blocks marked for this test (the cron lines, the
Kubernetes shard commands) are taken from README.md as written and run against the
simulator, with their paths moved into the test's folder."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oec_async.testing import OECSimulator, SimulatorFactory
from tests.cli._helpers import KiB, child_env

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/cli/test_readme.py runs these commands against the simulator -->"
BIN = Path(sys.executable).parent  # where the oec-backups console script is installed
_CRON_ENTRY = re.compile(r"^(\S+\s+){5}(?P<user>\S+)\s+(?P<command>.+)$")


def marked_blocks() -> list[str]:
    """The code blocks right after each marker, in order."""
    blocks = []
    for part in README.read_text().split(MARKER)[1:]:
        found = re.search(r"```[a-z]*\n(.*?)```", part, re.DOTALL)
        assert found is not None
        blocks.append(found.group(1))
    return blocks


@pytest.fixture
async def fresh_fleet(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Six environments in two projects, each with a backup taken last night."""
    sim = await oec_simulator_factory(
        seed=17, environments=6, projects=2, backups_per_environment=2, dump_size=4 * KiB
    )
    last_night = datetime.now(UTC) - timedelta(hours=3)
    for env in sim.environment_ids:
        sim.add_backup(env, backup_type="scheduled", created_at=last_night)
    return sim


async def sh(command: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


def environment(tmp_path: Path, sim: OECSimulator, **extra: str) -> dict[str, str]:
    (tmp_path / "child-tmp").mkdir(exist_ok=True)
    env = child_env(tmp_path / "child-tmp", OEC_BASE_URL=sim.base_url, **extra)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)


def test_the_readme_marks_its_fleet_commands() -> None:
    assert len(marked_blocks()) == 3


async def test_the_cron_lines_pull_every_environment_and_pass_the_dead_man_check(
    fresh_fleet: OECSimulator, tmp_path: Path
) -> None:
    crontab = marked_blocks()[0].replace("/srv/backups", str(tmp_path / "srv-backups"))
    crontab = crontab.replace("/etc/oec/", f"{tmp_path}/etc-oec/")
    variables = dict(
        line.split("=", 1) for line in crontab.splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    entries = [m for line in crontab.splitlines() if (m := _CRON_ENTRY.match(line))]
    assert [m["user"] for m in entries] == ["backup", "backup"]
    write_key(Path(variables["OEC_API_KEY_FILE"]), fresh_fleet.read_only_key)
    (tmp_path / "srv-backups").mkdir()  # made by the admin (no --mkdir: a mount point)
    env = environment(tmp_path, fresh_fleet, **variables)

    for entry in entries:  # in their order, as the night runs them
        status, output = await sh(entry["command"], env)
        assert (status, output) == (0, ""), output  # --quiet: cron mails nothing

    pulled = {p.name for p in (tmp_path / "srv-backups").iterdir()}
    assert pulled == {str(env_id) for env_id in fresh_fleet.environment_ids}
    for env_id in fresh_fleet.environment_ids:
        latest = tmp_path / "srv-backups" / str(env_id) / "latest"
        assert latest.readlink() == Path(str(fresh_fleet.latest_completed(env_id).id))


async def test_the_shard_commands_split_the_fleet_with_one_key_or_a_key_each(
    fresh_fleet: OECSimulator, tmp_path: Path
) -> None:
    shared, own_keys = marked_blocks()[1:]
    shards = 4
    keys = [fresh_fleet.add_key("ro", name=f"shard-{k}") for k in range(shards)]
    for k, key in enumerate(keys):
        write_key(tmp_path / "etc-oec" / f"shard-{k}", key)
    runs = []
    for block, dest in ((shared, "shared"), (own_keys, "own")):
        command = block.replace("--dest /backups", f"--dest {tmp_path / dest}")
        command = command.replace("/etc/oec/", f"{tmp_path}/etc-oec/")
        (tmp_path / dest).mkdir()
        runs += [
            sh(
                command,
                environment(
                    tmp_path,
                    fresh_fleet,
                    JOB_COMPLETION_INDEX=str(k),
                    OEC_API_KEY=fresh_fleet.read_only_key,
                ),
            )
            for k in range(shards)
        ]

    results = await asyncio.gather(*runs)

    for status, output in results:
        assert (status, output) == (0, ""), output
    everything = {str(env_id) for env_id in fresh_fleet.environment_ids}
    for dest in ("shared", "own"):
        assert {p.name for p in (tmp_path / dest).iterdir()} == everything
    by_key = {r.key_id for r in fresh_fleet.api_requests()}
    assert by_key == {"default-ro", *(f"shard-{k}" for k in range(shards))}
