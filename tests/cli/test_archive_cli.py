"""``verify``, ``status``, ``prune`` and ``pull``'s retention and monitoring options, run as
real subprocesses over real archives that the downloader wrote from the simulator."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from oec_async import OECClient
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory
from tests._support import PingServer, download_all, environment_with, flip_byte, serve_pings
from tests.cli._helpers import Run, assert_no_traceback, child_env, run_cli

KiB = 1024
NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "0b6c2d8e-3f4a-4b5c-9d6e-7f8091a2b3c4"


class ArchiveCLI:
    """Runs ``oec-backups``: archive commands with no key at all, ``pull`` with one."""

    def __init__(self, sim: OECSimulator, tmp_dir: Path) -> None:
        self.sim = sim
        self.tmp_dir = tmp_dir

    async def offline(self, *args: str | Path) -> Run:
        # OEC_BASE_URL points at the simulator, so that any request would be seen.
        env = child_env(self.tmp_dir, OEC_BASE_URL=self.sim.base_url, TZ="UTC")
        assert "OEC_API_KEY" not in env
        run = await run_cli(*args, env=env)
        assert_no_traceback(run)
        return run

    async def pull(self, *args: str | Path | uuid.UUID, **extra: str) -> Run:
        env = child_env(
            self.tmp_dir,
            OEC_API_KEY=self.sim.api_key,
            OEC_BASE_URL=self.sim.base_url,
            TZ="UTC",
            **extra,
        )
        run = await run_cli("pull", *(str(a) for a in args), "--mkdir", env=env)
        assert_no_traceback(run)
        assert self.sim.api_key.split("_", 3)[3] not in run.stdout + run.stderr
        return run


@pytest.fixture
async def sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(
        seed=31, environments=0, dump_size=16 * KiB, filestore_size=4 * KiB, read_limit=None
    )


@pytest.fixture
async def client(sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(sim, requests_per_minute=None)


@pytest.fixture
def cli(sim: OECSimulator, tmp_path: Path) -> ArchiveCLI:
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    return ArchiveCLI(sim, child_tmp)


@pytest.fixture
async def ping_server() -> AsyncIterator[PingServer]:
    async with serve_pings() as server:
        yield server


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# -- verify ----------------------------------------------------------------------------


async def test_verify_finds_a_flipped_byte_with_exit_1_and_json_problems(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    env = environment_with(sim, [NOW - timedelta(days=1), NOW])
    folders = await download_all(client, sim, env, dest)
    requests_before = len(sim.requests)

    clean = await cli.offline("verify", dest)
    flip_byte(folders[NOW] / "dump.sql", 1000)
    damaged = await cli.offline("verify", dest, "--json")

    assert clean.returncode == 0, clean
    assert "2 backup folder(s) checked, 0 with problems" in clean.stdout
    assert damaged.returncode == 1, damaged
    by_dir = {row["directory"]: row for row in damaged.json()}
    bad, good = by_dir[str(folders[NOW])], by_dir[str(folders[NOW - timedelta(days=1)])]
    assert good["ok"] is True
    assert good["problems"] == []
    assert bad["ok"] is False
    [problem] = bad["problems"]
    assert problem.startswith("dump.sql: sha256 ")
    assert f"error: {folders[NOW]}: dump.sql: sha256" in damaged.stderr
    assert len(sim.requests) == requests_before  # offline: not a single request


async def test_verify_of_a_path_with_no_backup_fails_and_a_missing_path_is_a_usage_error(
    cli: ArchiveCLI, tmp_path: Path
) -> None:
    empty = await cli.offline("verify", tmp_path)
    missing = await cli.offline("verify", tmp_path / "nope")

    assert empty.returncode == 1, empty
    assert "no backup folders under" in empty.stderr
    assert missing.returncode == 2, missing
    assert "does not exist" in missing.stderr


# -- status ----------------------------------------------------------------------------


async def test_verify_names_a_touched_backup_that_status_counts_again_once_downloaded(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    env = environment_with(sim, [NOW])
    folder = (await download_all(client, sim, env, dest))[NOW]
    dump = folder / "dump.sql"
    os.utime(dump, ns=(dump.stat().st_atime_ns, dump.stat().st_mtime_ns + 10**9))

    checked = await cli.offline("verify", dest, "--json")
    before = await cli.offline("status", dest, "--json")
    again = await client.download_backup(folder.name, dest)
    after = await cli.offline("status", dest, "--json")

    assert checked.returncode == 0, checked
    [row] = checked.json()
    assert (row["ok"], row["touched"]) == (True, True)
    assert "status, prune and latest count it as not verified" in checked.stderr
    assert f"oec-backups download {folder.name}" in checked.stderr
    assert before.json()[0]["verified"] is False
    assert again.database is not None
    assert again.database.bytes_transferred == 0  # the dump is re-hashed, not fetched
    assert after.json()[0]["verified"] is True


async def test_status_max_age_is_a_dead_man_check(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    fresh = environment_with(sim, [NOW - timedelta(hours=30), NOW - timedelta(hours=2)])
    stale = environment_with(sim, [NOW - timedelta(hours=30)])
    fresh_folders = await download_all(client, sim, fresh, dest)
    await download_all(client, sim, stale, dest)

    report = await cli.offline("status", dest, "--json", "--max-age", "26h")
    table = await cli.offline("status", dest)
    lenient = await cli.offline("status", dest, "--max-age", "2d", "-q")

    assert report.returncode == 1, report
    assert report.error_lines() == [
        f"error: {stale}: newest verified backup is 1d6h old (more than 1d2h)"
    ]
    rows = {row["environment_id"]: row for row in report.json()}
    newest = rows[str(fresh)]
    assert newest["backup_id"] == fresh_folders[NOW - timedelta(hours=2)].name
    assert newest["created_at"] == (NOW - timedelta(hours=2)).isoformat()
    assert 2 * 3600 <= newest["age_seconds"] < 2 * 3600 + 120
    assert newest["verified"] is True
    assert newest["size"] > 16 * KiB
    assert (newest["stale"], rows[str(stale)]["stale"]) == (False, True)
    assert table.returncode == 0, table
    assert str(fresh) in table.stdout
    assert lenient.returncode == 0, lenient
    assert lenient.stdout == ""


async def test_status_max_age_on_an_empty_destination_fails(
    cli: ArchiveCLI, tmp_path: Path
) -> None:
    run = await cli.offline("status", tmp_path, "--max-age", "26h")

    assert run.returncode == 1, run
    assert "no environment folders" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status", ".", "--max-age", "26"), "use a number and a unit"),
        (("status", ".", "--max-age", "soon"), "is not a duration"),
        (("prune", "."), "give at least one --keep-* option"),
        (("prune", ".", "--keep-daily", "-1"), "'unlimited'"),
        (("prune", ".", "--keep-within", "3y"), "is not a duration"),
    ],
)
async def test_bad_archive_arguments_are_usage_errors(
    cli: ArchiveCLI, args: tuple[str, ...], message: str
) -> None:
    run = await cli.offline(*args)

    assert run.returncode == 2, run
    assert message in run.stderr


# -- prune -----------------------------------------------------------------------------


def may(day: int, hour: int = 2) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)


async def test_prune_dry_run_deletes_nothing_then_prune_follows_the_policy(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    month = [may(day) for day in range(1, 32)] + [may(31, 14), may(20, 16)]
    env = environment_with(sim, month)
    folders = await download_all(client, sim, env, dest)
    policy = ["--keep-last", "2", "--keep-daily", "5", "--keep-weekly", "3", "--keep-monthly", "2"]
    kept = {may(31, 14), may(31), *(may(d) for d in (27, 28, 29, 30)), may(24), may(17), may(1)}
    before = sorted(str(p) for p in dest.rglob("*"))

    dry = await cli.offline("prune", dest, *policy, "--dry-run", "--json")
    after_dry = sorted(str(p) for p in dest.rglob("*"))
    real = await cli.offline("prune", dest, *policy)

    assert dry.returncode == 0, dry
    assert after_dry == before
    body = dry.json()
    assert body["dry_run"] is True
    assert sorted(body["kept"]) == sorted(str(folders[t]) for t in kept)
    assert sorted(body["deleted"]) == sorted(str(folders[t]) for t in month if t not in kept)
    reasons = {f["directory"]: f["reasons"] for f in body["folders"]}
    assert reasons[str(folders[may(1)])] == ["oldest monthly 2026-05"]
    assert real.returncode == 0, real
    for moment, folder in folders.items():
        assert folder.exists() == (moment in kept), moment
    assert f"deleted      {folders[may(23)]}" in real.stdout
    assert (dest / str(env) / "latest").readlink() == Path(folders[may(31, 14)].name)


async def test_prune_never_touches_a_foreign_or_partial_folder_nor_a_symlinked_one(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    env = environment_with(sim, [may(1), may(2), may(3)])
    folders = await download_all(client, sim, env, dest)
    other = await download_all(client, sim, environment_with(sim, [may(1), may(2)]), outside)
    foreign = dest / str(env) / str(uuid.uuid4())
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    partial = dest / str(env) / str(uuid.uuid4())
    partial.mkdir()
    (partial / "dump.sql.part").write_bytes(b"\0" * 100)
    (partial / ".oec-download.lock").write_text("")
    os.symlink(other[may(1)], dest / str(env) / str(uuid.uuid4()))
    outside_before = sorted(str(p) for p in outside.rglob("*"))

    run = await cli.offline("prune", dest, "--keep-last", "1", "--json")

    assert run.returncode == 0, run
    body = run.json()
    assert sorted(body["deleted"]) == sorted([str(folders[may(1)]), str(folders[may(2)])])
    assert sorted(body["ignored"]) == sorted([str(foreign), str(partial)])
    assert foreign.is_dir()
    assert partial.is_dir()
    assert sorted(str(p) for p in outside.rglob("*")) == outside_before


# -- pull --keep-*, --report, --metrics-file, --ping-url -------------------------------


async def test_pull_keep_last_prunes_each_environment_after_its_verified_download(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    env = environment_with(sim, [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW])
    today, *older = sim.backups(env)  # newest first
    old_folders = [(await client.download_backup(b.id, dest)).directory for b in older]

    run = await cli.pull(env, "--dest", dest, "--keep-last", "1", "--json")

    assert run.returncode == 0, run
    [row] = run.results()
    assert row["backup_id"] == str(today.id)
    assert row["latest"] == str(today.id)
    assert sorted(row["prune"]["deleted"]) == sorted(str(p) for p in old_folders)
    assert sorted(p.name for p in (dest / str(env)).iterdir()) == sorted([str(today.id), "latest"])
    assert (dest / str(env) / "latest").readlink() == Path(str(today.id))


async def test_pull_does_not_prune_after_a_download_it_could_not_verify(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    env = environment_with(sim, [NOW - timedelta(days=1), NOW])
    today, yesterday = sim.backups(env)
    kept = (await client.download_backup(yesterday.id, dest)).directory
    today = sim.update_backup(today.id, manifest_variant="no_checksums")

    run = await cli.pull(env, "--dest", dest, "--keep-last", "1", "--json")

    assert run.returncode == 0, run
    assert kept.is_dir()
    [row] = run.results()
    assert row["prune"] == {
        "skipped": "not pruned: its new backup is not verified (the manifest has no checksum)"
    }
    assert "warning: not pruned" in run.stderr
    # The restore pointer prefers the older, verified copy.
    assert row["latest"] == str(yesterday.id)


async def test_pull_writes_a_report_and_metrics_that_parse(
    cli: ArchiveCLI, sim: OECSimulator, tmp_path: Path
) -> None:
    dest, monitoring = tmp_path / "dest", tmp_path / "textfile"
    monitoring.mkdir()
    good = environment_with(sim, [NOW - timedelta(hours=1)])
    gone = uuid.uuid4()  # not an environment of the platform: this one fails
    new = sim.add_environment(backups=0, status="deploying")  # nothing to pull yet
    report, metrics = monitoring / "pull.json", monitoring / "oec_backups.prom"

    run = await cli.pull(
        good, gone, new, "--dest", dest, "--json", "--report", report, "--metrics-file", metrics
    )

    assert run.returncode == 1, run
    assert json.loads(report.read_text()) == run.json()
    rows = {row["environment_id"]: row for row in run.results()}
    assert rows[str(good)]["latest"] == rows[str(good)]["backup_id"]  # updated after the pull
    assert (dest / str(good) / "latest").readlink() == Path(rows[str(good)]["backup_id"])
    assert rows[str(gone)]["latest"] is None
    values = metric_values(metrics.read_text())
    good_label, gone_label = (("environment_id", str(good)),), (("environment_id", str(gone)),)
    assert values[("oec_backups_pull_success", good_label)] == 1
    assert values[("oec_backups_pull_success", gone_label)] == 0
    assert values[("oec_backups_backup_verified", good_label)] == 1
    assert (
        values[("oec_backups_backup_created_timestamp_seconds", good_label)]
        == (NOW - timedelta(hours=1)).timestamp()
    )
    assert values[("oec_backups_run_exit_status", ())] == 1
    assert values[("oec_backups_run_environments", (("result", "failed"),))] == 1
    assert values[("oec_backups_run_environments", (("result", "no_backup"),))] == 1
    assert values[("oec_backups_run_environments", (("result", "ok"),))] == 1
    assert rows[str(new)]["status"] == "no_backup"
    assert sorted(p.name for p in monitoring.iterdir()) == ["oec_backups.prom", "pull.json"]


async def test_pull_metrics_into_a_missing_folder_fail_the_run_with_a_clear_error(
    cli: ArchiveCLI, sim: OECSimulator, tmp_path: Path
) -> None:
    env = environment_with(sim, [NOW])
    missing = tmp_path / "no-such-folder" / "oec.prom"

    run = await cli.pull(env, "--dest", tmp_path / "dest", "--metrics-file", missing)

    assert run.returncode == 1, run
    assert f"error: cannot write --metrics-file {missing}" in run.stderr


async def test_pull_pings_start_then_the_exit_status_and_never_shows_the_url(
    cli: ArchiveCLI, sim: OECSimulator, ping_server: PingServer, tmp_path: Path
) -> None:
    env = environment_with(sim, [NOW])
    url = f"{ping_server.base_url}/{SECRET}"

    ok = await cli.pull(env, "--dest", tmp_path / "dest", "--ping-url", url)
    failed = await cli.pull(uuid.uuid4(), "--dest", tmp_path / "dest", OEC_PING_URL=url)

    assert ok.returncode == 0, ok
    assert failed.returncode == 1, failed
    assert ping_server.paths() == [
        f"/{SECRET}/start",
        f"/{SECRET}",
        f"/{SECRET}/start",
        f"/{SECRET}/1",
    ]
    queries = [query["rid"] for _, _, query, _ in ping_server.received]
    assert queries[0] == queries[1] != queries[2] == queries[3]
    assert ping_server.received[3][3].startswith("oec-backups pull: exit 1;")
    for run in (ok, failed):
        assert SECRET not in run.stdout + run.stderr


async def test_a_ping_service_that_is_down_never_fails_the_pull(
    cli: ArchiveCLI, sim: OECSimulator, tmp_path: Path
) -> None:
    env = environment_with(sim, [NOW])

    run = await cli.pull(
        env, "--dest", tmp_path / "dest", "--ping-url", f"http://127.0.0.1:1/{SECRET}"
    )

    assert run.returncode == 0, run
    assert "warning: ping http://127.0.0.1/… (start) failed: ClientConnectorError" in run.stderr
    assert "warning: ping http://127.0.0.1/… (success) failed" in run.stderr
    assert SECRET not in run.stdout + run.stderr


async def test_a_usage_error_is_pinged_and_recorded_with_exit_status_2(
    cli: ArchiveCLI, ping_server: PingServer, tmp_path: Path
) -> None:
    metrics = tmp_path / "oec.prom"
    url = f"{ping_server.base_url}/{SECRET}"

    run = await cli.pull(
        "not-a-uuid", "--dest", tmp_path / "dest", "--ping-url", url, "--metrics-file", metrics
    )

    assert run.returncode == 2, run
    assert ping_server.paths() == [f"/{SECRET}/start", f"/{SECRET}/2"]
    values = metric_values(metrics.read_text())
    assert values[("oec_backups_run_exit_status", ())] == 2
    assert values[("oec_backups_run_environments", (("result", "ok"),))] == 0


async def test_quiet_archive_commands_print_nothing_on_success(
    cli: ArchiveCLI, sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    env = environment_with(sim, [NOW - timedelta(days=1), NOW])
    await download_all(client, sim, env, dest)

    runs = [
        await cli.offline("verify", dest, "-q"),
        await cli.offline("status", dest, "--max-age", "2d", "--quiet"),
        await cli.offline("prune", dest, "--keep-last", "1", "-q"),
    ]

    for run in runs:
        assert run.returncode == 0, run
        assert (run.stdout, run.stderr) == ("", ""), run
    assert len(list((dest / str(env)).iterdir())) == 2  # the newest, and latest
