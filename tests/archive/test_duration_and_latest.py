"""Durations as the command line takes them, and the ``latest`` pointer."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oec_async import ConfigurationError, OECClient
from oec_async.archive import format_duration, parse_duration, read_latest, update_latest
from oec_async.testing import OECSimulator
from tests._support import download_all, environment_with

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26h", timedelta(hours=26)),
        ("7d", timedelta(days=7)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(hours=36)),
        (" 26H ", timedelta(hours=26)),
    ],
)
def test_durations_take_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["26", "", "h", "1y", "-3h", "0h", "3 h", "1.5h", "999999w"])
def test_durations_without_a_unit_or_positive_size_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=30), "1d6h"),
        (timedelta(hours=24), "1d"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
    ],
)
def test_durations_read_back_in_two_units(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


async def test_latest_follows_the_newest_verified_backup_and_is_replaced_atomically(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    env = environment_with(archive_sim, [NOW - timedelta(days=1), NOW])
    folders = await download_all(archive_client, archive_sim, env, tmp_path)
    env_dir = tmp_path / str(env)
    link = env_dir / "latest"

    assert update_latest(env_dir) == archive_sim.backups(env)[0].id
    first = link.lstat()
    assert os.readlink(link) == folders[NOW].name  # relative: the tree can move
    assert read_latest(env_dir) == folders[NOW]
    (folders[NOW] / "dump.sql").unlink()  # no longer intact: the older copy is the one
    update_latest(env_dir)

    assert os.readlink(link) == folders[NOW - timedelta(days=1)].name
    assert link.lstat().st_ino != first.st_ino  # a new link renamed over the old one
    assert sorted(p.name for p in env_dir.iterdir() if p.name.startswith(".")) == []


async def test_latest_is_removed_when_nothing_is_left_and_never_replaces_your_own(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    env = environment_with(archive_sim, [NOW])
    [folder] = (await download_all(archive_client, archive_sim, env, tmp_path)).values()
    env_dir = tmp_path / str(env)
    update_latest(env_dir)
    record = (folder / ".oec-download.json").read_bytes()
    (folder / ".oec-download.json").unlink()

    assert update_latest(env_dir) is None
    assert not (env_dir / "latest").is_symlink()
    (folder / ".oec-download.json").write_bytes(record)  # complete again...
    (env_dir / "latest").mkdir()  # ...but the user has a folder named latest
    (env_dir / "latest" / "notes.txt").write_text("mine")
    assert update_latest(env_dir) is None
    assert (env_dir / "latest" / "notes.txt").read_text() == "mine"
