"""A command line that behaves in cron: ``--quiet`` silent on success, listings that say
when they were cut, unknown filter values warned about, errors in flag names, sizes with
units, ``-v``/``-q`` anywhere; each run a real subprocess against the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from oec_async.testing import OECSimulator
from tests.cli._helpers import CLI

TiB = 1024**4


async def test_quiet_prints_nothing_at_all_on_success_whatever_the_command(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = cli_sim.environment_ids[0]
    backup = cli_sim.latest_completed(env).id
    new = cli_sim.add_environment(backups=0, status="deploying")  # a warning, unless quiet
    (tmp_path / "d").mkdir()

    runs = [
        *await asyncio.gather(
            cli("-q", "list", env),
            cli("list", env, "--quiet", "--limit", "1"),  # the cut is not said either
            cli("urls", backup, "-q"),  # not even the warning that URLs are secrets
            cli("download", backup, "--dest", tmp_path / "d", "-q"),
            cli("pull", env, new, "--dest", tmp_path / "p", "--mkdir", "--quiet"),
            cli("list-environments", "--quiet", "--status", "hibernating"),
            cli("backup", env, "--quiet"),
        )
    ]
    runs.append(await cli("verify", tmp_path / "d", "--quiet"))

    for run in runs:
        assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run
    assert (tmp_path / "p" / str(env) / "latest").is_symlink()  # it did the work


async def test_list_says_when_limit_cut_it_and_its_json_keeps_the_paging(
    cli: CLI, cli_sim: OECSimulator
) -> None:
    env = cli_sim.environment_ids[0]

    cut, cut_json, whole = await asyncio.gather(
        cli("list", env, "--limit", "2"),
        cli("list", env, "--limit", "2", "--json"),
        cli("list", env, "--json"),
    )

    assert cut.returncode == 0, cut
    assert "warning: showing the newest 2 of 6 backups (--limit 2)" in cut.stderr
    summary = cut_json.json()["summary"]
    assert (summary["count"], summary["total"], summary["truncated"]) == (2, 6, True)
    assert (summary["limit"], summary["page_size"], summary["total_pages"]) == (2, 2, 3)
    assert whole.json()["summary"]["truncated"] is False
    assert whole.stderr == ""
    assert all(row["created_at"].endswith("+00:00") for row in whole.results())


async def test_unknown_status_and_type_values_are_warned_about_with_the_valid_ones(
    cli: CLI, cli_sim: OECSimulator
) -> None:
    env = cli_sim.environment_ids[0]

    backups, environments, known = await asyncio.gather(
        cli("list", env, "--status", "archived_cold", "--type", "nightly"),
        cli("list-environments", "--status", "hibernating"),
        cli("list", env, "--status", "completed", "--type", "manual"),
    )

    for run in (backups, environments, known):
        assert run.returncode == 0, run  # sent as is: the platform may know more
    assert "warning: --status 'archived_cold' is not one the API documents" in backups.stderr
    assert "pending, running, completed, failed" in backups.stderr
    assert "warning: --type 'nightly' is not one" in backups.stderr
    assert "manual, scheduled, pre_deploy" in backups.stderr
    assert "warning: --status 'hibernating'" in environments.stderr
    assert "cloning, deploying, running" in environments.stderr
    assert "warning" not in known.stderr
    asked = [r.query.get("status") for r in cli_sim.api_requests("/backups")]
    assert "archived_cold" in asked  # it asked all the same


async def test_errors_name_the_flags_and_sizes_take_units(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    first, second, _ = cli_sim.environment_ids
    unchecked = cli_sim.update_backup(
        cli_sim.latest_completed(first).id, manifest_variant="no_checksums"
    )
    big = cli_sim.latest_completed(second).id
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()

    strict, no_room, reserve_ok, not_a_size, zero = await asyncio.gather(
        cli("download", unchecked.id, "--dest", tmp_path / "a", "--strict"),
        cli("download", big, "--dest", tmp_path / "b", "--min-free-space", "1000T"),
        cli("download", big, "--dest", tmp_path / "c", "--min-free-space", "1MiB", "-vv"),
        cli("download", big, "--dest", tmp_path / "c", "--min-free-space", "10 parsecs"),
        cli("pull", first, "--dest", tmp_path / "c", "--concurrency", "0"),
    )

    assert strict.returncode == 1, strict  # a retry will not add a checksum
    assert "--strict" in strict.stderr
    assert "strict=True" not in strict.stderr
    assert no_room.returncode == 1, no_room
    assert f"after keeping {1000 * TiB / TiB:.1f} TiB free (--min-free-space)" in no_room.stderr
    assert reserve_ok.returncode == 0, reserve_ok
    assert "DEBUG" in reserve_ok.stderr  # -vv after the subcommand
    assert not_a_size.returncode == 2, not_a_size
    assert "--min-free-space: not a size: '10 parsecs'" in not_a_size.stderr
    assert zero.returncode == 2, zero
    assert "--concurrency: must be at least 1" in zero.stderr
