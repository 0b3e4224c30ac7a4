"""What ``download`` and ``backup --download`` leave behind besides the backup: the
environment's ``latest`` link, and a plain account of what was repaired, in lines
printed as they are."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from oec_async.cli._output import Output
from oec_async.testing import OECSimulator
from tests._support import flip_byte
from tests.cli._helpers import CLI


def completed_backups(sim: OECSimulator, env_index: int = 0) -> list[str]:
    """The ids of an environment's completed backups, oldest first."""
    env = sim.environment_ids[env_index]
    done = [b for b in sim.backups(env) if b.status == "completed"]
    return [str(b.id) for b in sorted(done, key=lambda b: b.created_at)]


async def test_download_points_latest_at_the_newest_backup_on_disk_not_the_last_fetched(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    older, *_, newest = completed_backups(cli_sim)
    env_dir = tmp_path / str(cli_sim.environment_ids[0])

    first = await cli("download", older, "--dest", tmp_path)
    pointed_first = (env_dir / "latest").readlink()
    second = await cli("download", newest, "--dest", tmp_path)
    pointed_second = (env_dir / "latest").readlink()
    third = await cli("download", older, "--dest", tmp_path)  # already there: nothing moves

    assert [r.returncode for r in (first, second, third)] == [0, 0, 0], (first, second, third)
    assert pointed_first == Path(older)
    assert pointed_second == Path(newest)
    assert (env_dir / "latest").readlink() == Path(newest)


async def test_download_says_what_it_repaired_and_only_that(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = completed_backups(cli_sim)[-1]
    fetched = await cli("download", backup_id, "--dest", tmp_path)
    dump = tmp_path / str(cli_sim.environment_ids[0]) / backup_id / "dump.sql"
    flip_byte(dump, 100, keep_time=True)

    trusted = await cli("download", backup_id, "--dest", tmp_path)
    repaired = await cli("download", backup_id, "--dest", tmp_path, "--reverify")

    assert fetched.returncode == trusted.returncode == repaired.returncode == 0
    assert "checked when downloaded, --reverify re-hashes" in trusted.stdout
    assert "repaired: dump.sql no longer matches its recorded SHA-256" in repaired.stdout
    damaged = [line for line in repaired.stderr.splitlines() if "damaged" in line]
    assert len(damaged) == 1, repaired.stderr
    assert "database" in damaged[0]


def test_a_result_line_is_printed_as_it_is_never_wrapped_nor_read_as_markup_or_emoji(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = "/srv/backups[old]/:cat:/" + "e" * 36 + "/" + "b" * 36 + ": 3 files" + " (n)" * 40

    Output(argparse.Namespace()).print(line)

    assert capsys.readouterr().out == line + "\n"
