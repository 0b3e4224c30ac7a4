"""``oec-backups backup ENV_ID``: a backup taken on demand, waited for and downloaded, run
as a real subprocess against the simulator, whose backups run in simulated time (each
poll moves its clock on, so nothing sleeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from oec_async.testing import OECSimulator, SimulatorFactory, SimulatorSettings
from tests.cli._helpers import CLI, TIMESTAMPED_LINE, KiB, assert_files_match_storage

# The client's polls follow the window (every twelfth of it at first): a one-second
# window on both sides makes a wait of a few polls take a fraction of a second.
FAST = ("--rate-window", "1")


@pytest.fixture
async def cli_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    settings = SimulatorSettings(clock_speed=0, poll_advance=3.0, rate_window=1.0)
    return await oec_simulator_factory(
        seed=5, environments=3, backups_per_environment=2, dump_size=8 * KiB, settings=settings
    )


@pytest.fixture
def sim(cli_sim: OECSimulator) -> OECSimulator:
    return cli_sim


async def test_backup_wait_download_follows_it_to_completion_and_verifies_it(
    cli: CLI, sim: OECSimulator, tmp_path: Path
) -> None:
    first, second, _ = sim.environment_ids

    as_json, plain = await asyncio.gather(
        cli("backup", first, "--download", "--dest", tmp_path / "out", "--mkdir", "--json", *FAST),
        cli(
            "backup",
            second,
            "--wait",
            "--no-filestore",
            "--notes",
            "before the 18.0 upgrade",
            "--retention",
            "monthly",
            *FAST,
        ),
    )

    assert as_json.returncode == 0, as_json
    body = as_json.json()
    assert body["command"] == "backup"
    [row] = body["results"]
    assert (row["status"], row["ok"], row["error"]) == ("ok", True, None)
    assert row["backup"]["status"] == "completed"
    assert row["backup"]["created_at"].endswith("+00:00")
    assert row["download"]["verified"] is True
    backup = sim.backup(sim.backups(first)[0].id)
    assert row["backup_id"] == str(backup.id)
    assert_files_match_storage(sim, Path(row["download"]["directory"]), backup.id)
    assert body["summary"]["exit_status"] == 0

    assert plain.returncode == 0, plain
    taken = sim.backups(second)[0]
    assert (taken.has_filestore, taken.notes, taken.retention_type) == (
        False,
        "before the 18.0 upgrade",
        "monthly",
    )
    assert f"backup {taken.id} of environment {second}: completed" in plain.stdout
    progress = plain.stderr.splitlines()
    assert all(TIMESTAMPED_LINE.match(line) for line in progress), plain
    states = [line.split(": ", 1)[1] for line in progress if f"backup {str(taken.id)[:8]}" in line]
    assert states[-1].startswith("completed")
    assert any("%" in state for state in states)  # the task's percent and step
    assert len(states) == len(set(states))  # one line per change, not per poll
    # Each backup was asked for once.
    assert len(sim.api_requests(method="POST")) == 2


async def test_a_backup_that_fails_exits_1_with_the_platforms_reason(
    cli: CLI, sim: OECSimulator
) -> None:
    env = sim.environment_ids[0]
    sim.faults.backup_fails(environment_id=env, error_message="pg_dump: out of disk space")

    run = await cli("backup", env, "--wait", "--json", *FAST)

    assert run.returncode == 1, run
    [row] = run.results()
    assert (row["status"], row["error"]["type"]) == ("failed", "BackupFailedError")
    assert row["backup"]["status"] == "failed"
    (line,) = run.error_lines()
    assert "pg_dump: out of disk space" in line


async def test_a_backup_still_running_after_the_timeout_exits_75(
    cli: CLI, sim: OECSimulator
) -> None:
    sim.configure(poll_advance=0.0)  # the simulated clock stands still: it never ends
    env = sim.environment_ids[0]

    run = await cli("backup", env, "--wait", "--timeout", "0.3", "--json", *FAST)

    assert run.returncode == 75, run  # retry later: the backup goes on
    [row] = run.results()
    assert row["error"]["type"] == "WaitTimeoutError"
    assert row["error"]["kind"] == "retryable"
    assert row["backup"]["status"] == "pending"
    assert "still pending after 0.3 s" in run.error_lines()[0]


async def test_a_second_backup_while_one_runs_is_a_conflict_naming_it(
    cli: CLI, sim: OECSimulator
) -> None:
    sim.configure(poll_advance=0.0)
    env = sim.environment_ids[0]

    first = await cli("backup", env, *FAST)
    second = await cli("backup", env, "--json", *FAST)

    assert first.returncode == 0, first
    running = sim.backups(env)[0]
    assert f"backup {running.id} of environment {env}: pending" in first.stdout
    assert second.returncode == 75, second
    [row] = second.results()
    assert (row["backup_id"], row["error"]["type"]) == (None, "ConflictError")
    assert row["running_backup_id"] == str(running.id)
    assert str(running.id) in second.error_lines()[0]
    assert len(sim.api_requests(method="POST")) == 2  # the refused one is not resent


async def test_a_read_only_key_is_refused_before_any_request_and_exits_3(
    cli: CLI, sim: OECSimulator, tmp_path: Path
) -> None:
    env = sim.environment_ids[0]

    refused, dest_alone, download_alone = await asyncio.gather(
        cli("backup", env, "--wait", OEC_API_KEY=sim.read_only_key),
        cli("backup", env, "--dest", tmp_path),
        cli("backup", env, "--download"),
    )

    assert refused.returncode == 3, refused
    assert "read-only" in refused.error_lines()[0]
    assert dest_alone.returncode == 2, dest_alone
    assert "--dest is where --download puts the backup" in dest_alone.stderr
    assert download_alone.returncode == 2, download_alone
    assert "--download needs --dest" in download_alone.stderr
    assert sim.api_requests() == []
