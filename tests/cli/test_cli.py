"""``list``, ``urls``, ``download``, ``pull``, usage errors, secrets, ``demo`` and
``simulate``, each run as a real subprocess against the simulator."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import uuid
from pathlib import Path

from oec_async.testing import OECSimulator
from tests.cli._helpers import (
    ANSI_ESCAPE,
    CLI,
    TIMESTAMPED_LINE,
    assert_files_match_storage,
    assert_no_traceback,
    child_env,
    has_summary_header,
    ids_of,
    run_cli,
)

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
    assert ids_of(everything.results()) == [str(b.id) for b in backups]
    assert len(everything.results()) == 6
    assert ids_of(completed.results()) == [str(b.id) for b in backups if b.status == "completed"]
    assert {row["status"] for row in completed.results()} == {"completed"}
    assert ids_of(manual.results()) == [str(b.id) for b in backups if b.backup_type == "manual"]
    assert ids_of(first_three.results()) == [str(b.id) for b in backups[:3]]


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
    dest.mkdir()
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
    [row] = as_json.results()
    assert (row["backup_id"], row["status"]) == (str(second.id), "ok")
    body = row["download"]
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
    again = rerun_json.results()[0]["download"]
    assert (again["verified"], again["skipped"], again["bytes_transferred"]) == (True, True, 0)
    assert rerun_plain.returncode == 0, rerun_plain
    assert "already complete" in rerun_plain.stdout
    assert len(cli_sim.storage_requests()) == storage_requests


# -- pull ------------------------------------------------------------------------------


async def test_pull_json_reports_every_environment_verified(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    envs = cli_sim.environment_ids[:2]

    run = await cli("pull", *envs, "--dest", tmp_path / "out", "--mkdir", "--json")

    assert run.returncode == 0, run
    results = run.results()
    assert [r["environment_id"] for r in results] == [str(e) for e in envs]
    assert [r["backup_id"] for r in results] == [str(cli_sim.latest_completed(e).id) for e in envs]
    assert all(r["ok"] and r["error"] is None and r["download"]["verified"] for r in results)
    assert run.error_lines() == []


async def test_pull_reports_no_backup_apart_from_failures_and_fails_on_it_when_asked(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    good = cli_sim.environment_ids[0]
    no_completed = cli_sim.add_environment(statuses=["failed", "running"])
    unknown = uuid.uuid4()

    as_json, plain, only_new, strict = await asyncio.gather(
        cli("pull", good, no_completed, unknown, "--dest", tmp_path / "a", "--mkdir", "--json"),
        cli("pull", good, no_completed, unknown, "--dest", tmp_path / "b", "--mkdir"),
        cli("pull", good, no_completed, "--dest", tmp_path / "c", "--mkdir"),
        cli("pull", good, no_completed, "--dest", tmp_path / "d", "--mkdir", "--fail-on-no-backup"),
    )

    for run in (as_json, plain):
        assert run.returncode == 1, run  # the 404 is a failure that a retry will not fix
        (error,) = run.error_lines()
        assert error.startswith(f"error: {unknown}: ")
        assert "404" in error
        assert f"warning: {no_completed}: has no completed backup yet" in run.stderr
    results = as_json.results()
    assert [r["status"] for r in results] == ["ok", "no_backup", "failed"]
    assert [r["error"] and r["error"]["type"] for r in results] == [
        None,
        "NoCompletedBackupError",
        "NotFoundError",
    ]
    assert (
        as_json.json()["summary"] | {"no_backup": 1, "failed": 1, "ok": 1}
        == (as_json.json()["summary"])
    )
    table = {line.split()[1]: line for line in plain.stdout.splitlines() if "│" in line}
    assert "no backup" in table[str(no_completed)]
    assert "FAILED" in table[str(unknown)]
    backup = cli_sim.latest_completed(good)
    assert_files_match_storage(cli_sim, tmp_path / "b" / str(good) / str(backup.id), backup.id)
    assert only_new.returncode == 0, only_new  # no backup yet is not a failure...
    assert only_new.error_lines() == []
    assert strict.returncode == 1, strict  # ...unless asked
    (error,) = strict.error_lines()
    assert error.startswith(f"error: {no_completed}: ")
    assert "no completed backup" in error


async def test_pull_reads_environment_ids_from_a_file_with_comments_and_blank_lines(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    first, second, third = cli_sim.environment_ids
    env_file = tmp_path / "environments.txt"
    env_file.write_text(
        f"# nightly pull\n\n{first}   # production\n   \n{second}\n# {uuid.uuid4()} retired\n"
    )

    run = await cli(
        "pull", third, "--from-file", env_file, "--dest", tmp_path / "out", "--mkdir", "--json"
    )

    assert run.returncode == 0, run
    assert [r["environment_id"] for r in run.results()] == [
        str(third),
        str(first),
        str(second),
    ]
    assert all(r["ok"] for r in run.results())


async def test_pull_on_a_pipe_prints_plain_progress_lines_and_a_summary_table(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    envs = cli_sim.environment_ids[:2]

    run = await cli("pull", *envs, "--dest", tmp_path / "out", "--mkdir")

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
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
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
        "pull into a missing --dest": (("pull", env, "--dest", dest), {}),
        "download into a file": (("download", backup, "--dest", a_file, "--mkdir"), {}),
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
    assert (
        "does not exist: create it, or give --mkdir" in by_name["pull into a missing --dest"].stderr
    )
    assert "is not a folder" in by_name["download into a file"].stderr
    assert len(cli_sim.requests) == 0
    assert not dest.exists()


# -- secrets -----------------------------------------------------------------------------


async def test_neither_the_key_nor_presigned_signatures_appear_in_debug_logs(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    env = cli_sim.environment_ids[0]
    wrong_key = "oec_live_ro_" + "W" * 24 + "notthekey"

    pulled, listed, refused = await asyncio.gather(
        cli("-vv", "pull", env, "--dest", tmp_path / "out", "--mkdir"),
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
    assert refused.returncode == 3, refused  # the key was refused
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
    results = as_json.results()
    assert sorted(r["status"] for r in results) == ["failed", "no_backup", "ok", "ok"]
    [failed] = [r for r in results if r["status"] == "failed"]
    assert failed["error"]["type"] == "IntegrityError"
    assert as_json.json()["summary"]["exit_status"] == 0


async def start_simulate(sim_tmp: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oec_async",
        "simulate",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(sim_tmp),
    )


async def read_until_ready(process: asyncio.subprocess.Process) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != "# ready":
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "simulate exited before it was ready"
        lines.append(line.rstrip("\n"))
    return lines


async def test_simulate_prints_export_lines_serves_the_cli_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    sim_tmp = tmp_path / "sim-tmp"
    sim_tmp.mkdir()
    process = await start_simulate(
        sim_tmp, "--port", "0", "--environments", "2", "--dump-size", "4KiB", "--fresh"
    )
    try:
        lines = await read_until_ready(process)
        exports = [line for line in lines if line.startswith("export ")]
        settings = dict(line.removeprefix("export ").split("=", 1) for line in exports)
        assert set(settings) == {"OEC_BASE_URL", "OEC_API_KEY"}
        assert settings["OEC_BASE_URL"].startswith("http://127.0.0.1:")
        assert all(line.startswith(("export ", "# ")) for line in lines)  # sourceable
        environments = [line.split()[2] for line in lines if line.startswith("# environment ")]
        assert len(environments) == 2
        sourced = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            'eval "$LINES"; echo "$OEC_BASE_URL"',
            stdout=asyncio.subprocess.PIPE,
            env={"LINES": "\n".join(lines), "PATH": "/usr/bin:/bin"},
        )
        assert (await sourced.communicate())[0].decode().strip() == settings["OEC_BASE_URL"]

        listed, pulled, fresh = await asyncio.gather(
            run_cli("list", environments[0], env=child_env(tmp_path, **settings)),
            run_cli(
                "pull",
                "--all",
                "--dest",
                tmp_path / "out",
                "--mkdir",
                "--json",
                env=child_env(tmp_path, **settings),
            ),
            run_cli(
                "list",
                environments[1],
                "--json",
                "--limit",
                "1",
                env=child_env(tmp_path, **settings),
            ),
        )

        assert listed.returncode == 0, listed
        assert "completed" in listed.stdout
        assert pulled.returncode == 0, pulled
        assert sorted(r["environment_id"] for r in pulled.results()) == sorted(environments)
        [newest] = fresh.results()  # --fresh: a backup of an hour ago
        assert newest["created_at"] > "2026-06"
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


async def test_simulate_on_a_busy_port_says_so_and_leaves_no_temp_folder(tmp_path: Path) -> None:
    sim_tmp = tmp_path / "sim-tmp"
    sim_tmp.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await start_simulate(sim_tmp, "--port", str(port), "--environments", "1")
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 2, stderr.decode()
    assert stdout == b""
    assert f"--port {port}: cannot listen" in stderr.decode()
    assert "in use" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert list(sim_tmp.iterdir()) == []  # the generated files went with it
