"""Exit statuses a scheduler can act on (a retryable failure apart from a permanent one,
a refused key apart from both), and the key read from a file; real subprocesses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from oec_async.testing import OECSimulator
from tests._support import download_lock_held
from tests.cli._helpers import CLI

EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_RETRYABLE = 1, 2, 3, 75


async def test_exit_statuses_tell_retryable_failures_from_permanent_ones(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    flaky, good, locked = cli_sim.environment_ids
    cli_sim.faults.api_errors(503, times=None, path_contains=str(flaky))
    locked_backup = cli_sim.latest_completed(locked).id
    unknown_key = "oec_live_ro_" + "Z" * 30
    (tmp_path / "locked" / str(locked)).mkdir(parents=True)

    async with download_lock_held(tmp_path / "locked" / str(locked) / str(locked_backup)):
        server_down, lock_held, gone, refused, usage, mixed = await asyncio.gather(
            cli("pull", flaky, "--dest", tmp_path / "a", "--mkdir", "--retries", "0"),
            cli("download", locked_backup, "--dest", tmp_path / "locked", "--mkdir"),
            cli("pull", good, uuid.uuid4(), "--dest", tmp_path / "b", "--mkdir"),
            cli("pull", good, "--dest", tmp_path / "c", "--mkdir", OEC_API_KEY=unknown_key),
            cli("pull", good, "--dest", tmp_path / "d", "--mkdir", "--concurrency", "none"),
            cli(
                "pull",
                good,
                uuid.uuid4(),
                flaky,
                "--dest",
                tmp_path / "e",
                "--mkdir",
                "--retries",
                "0",
            ),
        )

    assert server_down.returncode == EXIT_RETRYABLE, server_down
    assert "503" in server_down.error_lines()[0]
    assert lock_held.returncode == EXIT_RETRYABLE, lock_held
    assert "--lock-timeout" in lock_held.stderr  # the flag, not the Python argument
    assert "lock_timeout" not in lock_held.stderr
    assert gone.returncode == EXIT_FAILED, gone  # a 404 comes back on every retry
    assert refused.returncode == EXIT_REFUSED, refused
    assert usage.returncode == EXIT_USAGE, usage
    # One failure a retry may fix makes the run worth retrying; the rest fail again.
    assert mixed.returncode == EXIT_RETRYABLE, mixed
    assert len(mixed.error_lines()) == 2


async def test_the_key_is_read_from_a_file_and_never_printed(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = cli_sim.environment_ids[0]
    key_file = tmp_path / "key"
    key_file.write_text(f"  {cli_sim.read_only_key}\n")
    malformed = tmp_path / "malformed"
    malformed.write_text("sk-live-this-is-not-our-key-format\n")
    two_lines = tmp_path / "two-lines"
    two_lines.write_text(f"{cli_sim.read_only_key}\n{cli_sim.api_key}\n")
    no_key = {"OEC_API_KEY": ""}

    by_flag, by_variable, missing, both, bad, double, none_at_all = await asyncio.gather(
        cli("list", env, "--json", "--api-key-file", key_file, **no_key),
        cli("list", env, "--json", OEC_API_KEY_FILE=str(key_file), **no_key),
        cli("list", env, "--api-key-file", tmp_path / "absent", **no_key),
        cli("list", env, "--api-key-file", key_file, "--api-key", cli_sim.api_key),
        cli("list", env, "--api-key-file", malformed, **no_key),
        cli("list", env, "--api-key-file", two_lines, **no_key),
        cli("list", env, **no_key),
    )

    assert by_flag.returncode == 0, by_flag
    assert by_variable.returncode == 0, by_variable
    assert by_flag.results() == by_variable.results() != []
    assert {r.key_id for r in cli_sim.api_requests()} == {"default-ro"}
    for run in (missing, both, bad, double, none_at_all):
        assert run.returncode == EXIT_USAGE, run
        assert run.stdout == ""
    assert f"--api-key-file {tmp_path / 'absent'}: cannot read it" in missing.stderr
    assert "not both" in both.stderr
    assert "malformed API key" in bad.stderr
    assert "sk-live" not in bad.stderr  # what the file holds is never shown
    assert "more than one line" in double.stderr
    token = cli_sim.read_only_key.split("_", 3)[3]
    assert all(token not in run.stderr for run in (by_flag, by_variable, double))
    assert "--api-key" in none_at_all.stderr  # the flags, not the Python argument
    assert "OEC_API_KEY" in none_at_all.stderr
    assert "api_key=" not in none_at_all.stderr
