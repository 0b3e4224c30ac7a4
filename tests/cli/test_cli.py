"""``oec-backups`` run as a real subprocess (``python -m oec_async``) against the simulator.

The simulator serves from the test's own event loop while the child runs, so every child
is started with ``asyncio.create_subprocess_exec`` and awaited, never waited on blocking.
Every run is checked for the two things that must never happen whatever the command: the
API key in the output, and a Python traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from oec_async.testing import OECSimulator, SimulatorFactory

KiB = 1024
SUMMARY_HEADER = ("environment", "backup", "size", "verified", "time", "error")
ANSI_ESCAPE = "\x1b["
TIMESTAMPED_LINE = re.compile(r"^\d\d:\d\d:\d\d \S")
# Variables that would make the child's output depend on who runs the tests.
_NOT_INHERITED = {
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
}


@attrs.frozen
class Run:
    """One finished ``oec-backups`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def __str__(self) -> str:  # what pytest shows when an assertion about a run fails
        return (
            f"oec-backups {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def child_env(tmp_dir: Path, **overrides: str) -> dict[str, str]:
    """The test's environment without OEC_* and colour switches, plus ``overrides``.

    TMPDIR points into the test's tmp folder, so nothing a child leaves behind outlives
    the test."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OEC_") and k not in _NOT_INHERITED
    }
    env["TMPDIR"] = str(tmp_dir)
    env.update(overrides)
    return env


async def run_cli(*args: str | Path, env: Mapping[str, str], timeout: float = 60.0) -> Run:
    shown = tuple(str(a) for a in args)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oec_async",
        *shown,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Run(shown, process.returncode, stdout.decode(), stderr.decode())


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stderr, run
    assert "Traceback" not in run.stdout, run


class CLI:
    """Runs the command line against one simulator and checks every run for leaks."""

    def __init__(self, sim: OECSimulator, tmp_dir: Path) -> None:
        self.sim = sim
        self.tmp_dir = tmp_dir
        self.runs: list[Run] = []

    def env(self, **overrides: str) -> dict[str, str]:
        settings = {"OEC_API_KEY": self.sim.api_key, "OEC_BASE_URL": self.sim.base_url}
        return child_env(self.tmp_dir, **{**settings, **overrides})

    async def __call__(self, *args: str | Path | uuid.UUID, **env: str) -> Run:
        run = await run_cli(*(str(a) for a in args), env=self.env(**env))
        self.runs.append(run)
        token = self.sim.api_key.split("_", 3)[3]  # oec_live_rw_<token>
        assert token not in run.stdout, run
        assert token not in run.stderr, run
        assert_no_traceback(run)
        return run


@pytest.fixture
async def cli_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    # Six backups per environment: running, completed, completed, failed, completed,
    # pending; types scheduled, manual, pre_deploy, pre_restore, pre_upgrade, pre_destroy.
    return await oec_simulator_factory(
        seed=2024,
        environments=3,
        backups_per_environment=6,
        dump_size=32 * KiB,
        filestore_size=8 * KiB,
    )


@pytest.fixture
def cli(cli_sim: OECSimulator, tmp_path: Path) -> CLI:
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    return CLI(cli_sim, child_tmp)


def has_summary_header(line: str) -> bool:
    return all(f" {word} " in line for word in SUMMARY_HEADER)


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


def assert_files_match_storage(sim: OECSimulator, directory: Path, backup_id: uuid.UUID) -> None:
    for artifact in ("database", "filestore", "manifest"):
        stored = sim.object(backup_id, artifact)
        assert (directory / stored.path.name).read_bytes() == stored.path.read_bytes()


# -- list ------------------------------------------------------------------------------


async def test_list_prints_a_table_with_every_backup_id(cli: CLI, cli_sim: OECSimulator) -> None:
    env = cli_sim.environment_ids[0]

    run = await cli("list", env)

    assert run.returncode == 0, run
    for column in ("id", "status", "type", "created", "database", "filestore", "verified"):
        assert column in run.stdout
    for backup in cli_sim.backups(env):
        assert str(backup.id) in run.stdout
    assert ANSI_ESCAPE not in run.stdout
    assert run.stderr == ""


async def test_list_with_nothing_matching_says_so(cli: CLI, cli_sim: OECSimulator) -> None:
    run = await cli("list", cli_sim.environment_ids[0], "--status", "archived_cold")

    assert run.returncode == 0, run
    assert run.stdout == ""
    assert "no backups match" in run.stderr


async def test_list_json_honours_status_type_and_limit(cli: CLI, cli_sim: OECSimulator) -> None:
    env = cli_sim.environment_ids[0]
    backups = cli_sim.backups(env)

    everything, completed, manual, first_three = await asyncio.gather(
        cli("list", env, "--json"),
        cli("list", env, "--json", "--status", "completed"),
        cli("list", env, "--json", "--type", "manual"),
        cli("list", env, "--json", "--limit", "3"),
    )

    for run in (everything, completed, manual, first_three):
        assert run.returncode == 0, run
    assert ids_of(everything.json()) == [str(b.id) for b in backups]
    assert len(everything.json()) == 6
    assert ids_of(completed.json()) == [str(b.id) for b in backups if b.status == "completed"]
    assert {row["status"] for row in completed.json()} == {"completed"}
    assert ids_of(manual.json()) == [str(b.id) for b in backups if b.backup_type == "manual"]
    assert ids_of(first_three.json()) == [str(b.id) for b in backups[:3]]


# -- urls ------------------------------------------------------------------------------


async def test_urls_prints_presigned_urls_and_warns_that_they_are_secrets(
    cli: CLI, cli_sim: OECSimulator
) -> None:
    backup = cli_sim.latest_completed(cli_sim.environment_ids[0])
    prefix = f"{cli_sim.storage_url}/bucket/{backup.environment_id}/{backup.id}/"

    plain, as_json = await asyncio.gather(cli("urls", backup.id), cli("urls", backup.id, "--json"))

    assert plain.returncode == 0, plain
    lines = dict(line.split(": ", 1) for line in plain.stdout.splitlines())
    assert set(lines) == {"database", "filestore", "manifest"}
    assert all(url.startswith(prefix) and "X-Amz-Signature=" in url for url in lines.values())
    for run in (plain, as_json):
        assert "warning" in run.stderr
        assert "secret" in run.stderr

    assert as_json.returncode == 0, as_json
    body = as_json.json()
    assert body["backup_id"] == str(backup.id)
    assert body["expires_in"] == 3600
    for name in ("database_url", "filestore_url", "manifest_url"):
        assert body[name].startswith(prefix)


async def test_urls_of_a_backup_not_completed_fails_with_one_error_line(
    cli: CLI, cli_sim: OECSimulator
) -> None:
    running = cli_sim.backups(cli_sim.environment_ids[0])[0]
    assert running.status == "running"

    run = await cli("urls", running.id)

    assert run.returncode == 1, run
    assert run.stdout == ""
    assert run.stderr.splitlines() == run.error_lines()
    (line,) = run.error_lines()
    assert "not in completed status" in line
    assert "400" in line


# -- download --------------------------------------------------------------------------


async def test_download_fetches_verified_files_and_a_rerun_transfers_nothing(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    dest = tmp_path / "backups"
    first, second = (cli_sim.latest_completed(env) for env in cli_sim.environment_ids[:2])

    plain, as_json = await asyncio.gather(
        cli("download", first.id, "--dest", dest),
        cli("download", second.id, "--dest", dest, "--json"),
    )

    assert plain.returncode == 0, plain
    assert "verified" in plain.stdout
    assert "NOT verified" not in plain.stdout
    assert_files_match_storage(cli_sim, dest / str(first.environment_id) / str(first.id), first.id)
    assert as_json.returncode == 0, as_json
    body = as_json.json()
    assert body["backup_id"] == str(second.id)
    assert (body["verified"], body["skipped"]) == (True, False)
    assert body["bytes_transferred"] == body["size"] > 0
    assert {f["artifact"] for f in body["files"]} == {"database", "filestore", "manifest"}
    assert_files_match_storage(cli_sim, Path(body["directory"]), second.id)
    storage_requests = len(cli_sim.storage_requests())

    rerun_json, rerun_plain = await asyncio.gather(
        cli("download", first.id, "--dest", dest, "--json"),
        cli("download", second.id, "--dest", dest),
    )

    assert rerun_json.returncode == 0, rerun_json
    again = rerun_json.json()
    assert (again["verified"], again["skipped"], again["bytes_transferred"]) == (True, True, 0)
    assert rerun_plain.returncode == 0, rerun_plain
    assert "already complete" in rerun_plain.stdout
    assert len(cli_sim.storage_requests()) == storage_requests


# -- pull ------------------------------------------------------------------------------


async def test_pull_json_reports_every_environment_verified(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    envs = cli_sim.environment_ids[:2]

    run = await cli("pull", *envs, "--dest", tmp_path / "out", "--json")

    assert run.returncode == 0, run
    results = run.json()
    assert [r["environment_id"] for r in results] == [str(e) for e in envs]
    assert [r["backup_id"] for r in results] == [str(cli_sim.latest_completed(e).id) for e in envs]
    assert all(r["ok"] and r["error"] is None and r["download"]["verified"] for r in results)
    assert run.error_lines() == []


async def test_pull_with_broken_environments_exits_1_with_one_error_line_each(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    good = cli_sim.environment_ids[0]
    no_completed = cli_sim.add_environment(statuses=["failed", "running"])
    unknown = uuid.uuid4()

    as_json, plain = await asyncio.gather(
        cli("pull", good, no_completed, unknown, "--dest", tmp_path / "a", "--json"),
        cli("pull", good, no_completed, unknown, "--dest", tmp_path / "b"),
    )

    for run in (as_json, plain):
        assert run.returncode == 1, run
        errors = run.error_lines()
        assert len(errors) == 2, run
        assert errors[0].startswith(f"error: {no_completed}: ")
        assert "no completed backup" in errors[0]
        assert errors[1].startswith(f"error: {unknown}: ")
        assert "404" in errors[1]
    results = as_json.json()
    assert [r["ok"] for r in results] == [True, False, False]
    assert [r["error"] and r["error"]["type"] for r in results] == [
        None,
        "NoCompletedBackupError",
        "NotFoundError",
    ]
    assert str(good) in plain.stdout  # the summary table still lists every environment
    backup = cli_sim.latest_completed(good)
    assert_files_match_storage(cli_sim, tmp_path / "b" / str(good) / str(backup.id), backup.id)


async def test_pull_reads_environment_ids_from_a_file_with_comments_and_blank_lines(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    first, second, third = cli_sim.environment_ids
    env_file = tmp_path / "environments.txt"
    env_file.write_text(
        f"# nightly pull\n\n{first}   # production\n   \n{second}\n# {uuid.uuid4()} retired\n"
    )

    run = await cli("pull", third, "--from-file", env_file, "--dest", tmp_path / "out", "--json")

    assert run.returncode == 0, run
    assert [r["environment_id"] for r in run.json()] == [str(third), str(first), str(second)]
    assert all(r["ok"] for r in run.json())


async def test_pull_on_a_pipe_prints_plain_progress_lines_and_a_summary_table(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    envs = cli_sim.environment_ids[:2]

    run = await cli("pull", *envs, "--dest", tmp_path / "out")

    assert run.returncode == 0, run
    assert ANSI_ESCAPE not in run.stdout
    assert ANSI_ESCAPE not in run.stderr
    progress = run.stderr.splitlines()
    assert progress
    assert all(TIMESTAMPED_LINE.match(line) for line in progress), run
    assert sum(": done (" in line for line in progress) == 6  # three files per environment
    assert "total: 2/2 environments (0 failed)" in progress[-1]
    assert has_summary_header(run.stdout.splitlines()[1]), run
    for env in envs:
        assert str(env) in run.stdout


# -- usage errors ----------------------------------------------------------------------


async def test_usage_errors_exit_2_with_a_message_and_no_request(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = str(cli_sim.environment_ids[0])
    backup = str(cli_sim.latest_completed(cli_sim.environment_ids[0]).id)
    dest = tmp_path / "out"
    malformed_key = "sk-live-Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"
    cases: dict[str, tuple[tuple[str | Path, ...], dict[str, str]]] = {
        "no subcommand": ((), {}),
        "bad ENV_ID": (("list", "../../etc/passwd"), {}),
        "bad BACKUP_ID": (("download", "42", "--dest", dest), {}),
        "malformed key": (("list", env), {"OEC_API_KEY": malformed_key}),
        "http to another host": (
            ("list", env),
            {"OEC_BASE_URL": "http://api.oec.example/api/public/v1"},
        ),
        "concurrency 0": (("pull", env, "--dest", dest, "--concurrency", "0"), {}),
        "pull without ids": (("pull", "--dest", dest), {}),
        "unreadable --from-file": (
            ("pull", "--from-file", tmp_path / "missing.txt", "--dest", dest),
            {},
        ),
        "download without --dest": (("download", backup), {}),
    }

    runs = await asyncio.gather(*(cli(*args, **env_vars) for args, env_vars in cases.values()))

    for name, run in zip(cases, runs, strict=True):
        assert run.returncode == 2, f"{name}: {run}"
        assert run.stdout == "", name
        assert "error:" in run.stderr, name
        assert malformed_key not in run.stderr, name
    by_name = dict(zip(cases, runs, strict=True))
    assert "concurrency" in by_name["concurrency 0"].stderr
    assert "malformed API key" in by_name["malformed key"].stderr
    assert "http" in by_name["http to another host"].stderr
    assert len(cli_sim.requests) == 0
    assert not dest.exists()


# -- secrets -----------------------------------------------------------------------------


async def test_neither_the_key_nor_presigned_signatures_appear_in_debug_logs(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = cli_sim.environment_ids[0]
    wrong_key = "oec_live_ro_" + "W" * 24 + "notthekey"

    pulled, listed, refused = await asyncio.gather(
        cli("-vv", "pull", env, "--dest", tmp_path / "out"),
        cli("-vv", "list", env, "--json"),
        cli("-vv", "list", env, OEC_API_KEY=wrong_key),
    )

    assert pulled.returncode == 0, pulled
    assert listed.returncode == 0, listed
    assert "DEBUG" in pulled.stderr
    assert "GET /environments/" in pulled.stderr
    assert "DEBUG" in listed.stderr
    signatures = {r.query["X-Amz-Signature"] for r in cli_sim.storage_requests()}
    assert signatures
    for signature in signatures:
        assert signature not in pulled.stdout + pulled.stderr
    assert refused.returncode == 1, refused
    (line,) = refused.error_lines()
    assert "401" in line
    assert "W" * 24 not in refused.stdout + refused.stderr
    # The fixture checked every run above (and every run of every test) for the key.
    assert len(cli.runs) == 3


# -- demo and simulate -------------------------------------------------------------------


async def test_demo_pulls_simulated_environments_and_prints_the_summary(tmp_path: Path) -> None:
    env = child_env(tmp_path)

    plain, as_json = await asyncio.gather(
        run_cli("demo", "--environments", "3", "--dest", tmp_path / "plain", env=env),
        run_cli("demo", "--environments", "3", "--dest", tmp_path / "json", "--json", env=env),
    )

    for run in (plain, as_json):
        assert run.returncode == 0, run  # the one broken environment is the point of it
        assert_no_traceback(run)
    assert any(has_summary_header(line) for line in plain.stdout.splitlines()), plain
    assert ANSI_ESCAPE not in plain.stdout
    results = as_json.json()
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[-1]["error"]["type"] == "IntegrityError"


async def test_simulate_prints_settings_serves_the_cli_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    sim_tmp = tmp_path / "sim-tmp"
    sim_tmp.mkdir()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oec_async",
        "simulate",
        "--port",
        "0",
        "--environments",
        "2",
        "--dump-size",
        "4096",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(sim_tmp),
    )
    try:
        assert process.stdout is not None
        settings: dict[str, str] = {}
        environments: list[str] = []
        while len(environments) < 2:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "simulate exited before printing its settings"
            if line.startswith("environment "):
                environments.append(line.split()[1])
            else:
                name, _, value = line.strip().partition("=")
                settings[name] = value
        assert set(settings) == {"OEC_BASE_URL", "OEC_API_KEY"}
        assert settings["OEC_BASE_URL"].startswith("http://127.0.0.1:")

        listed, pulled = await asyncio.gather(
            run_cli("list", environments[0], env=child_env(tmp_path, **settings)),
            run_cli(
                "pull",
                *environments,
                "--dest",
                tmp_path / "out",
                "--json",
                env=child_env(tmp_path, **settings),
            ),
        )

        assert listed.returncode == 0, listed
        assert "completed" in listed.stdout
        assert pulled.returncode == 0, pulled
        assert all(r["ok"] for r in pulled.json())
        assert any(sim_tmp.iterdir())  # the simulator's generated files

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stderr.decode()
    assert "simulator stopped" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert list(sim_tmp.iterdir()) == []  # its temp folder is gone
