"""Pulling a fleet from the command line (API.md section 9): ``--all``, ``--project``,
``--exclude``, ``--from-file`` (a file or standard input), explicit ids as a union, and
``list-environments`` showing what ``--all`` pulls; each run a real subprocess."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from oec_async import shard_of
from oec_async.testing import OECSimulator, SimulatorFactory
from tests.cli._helpers import CLI, KiB


@pytest.fixture
async def cli_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Three projects of three environments each (a few KiB per backup), and one new
    environment in the last project that has no backup yet."""
    sim = await oec_simulator_factory(
        seed=99,
        environments=9,
        projects=3,
        backups_per_environment=3,
        dump_size=4 * KiB,
        filestore_size=2 * KiB,
    )
    sim.add_environment(backups=0, status="deploying", name="new", project_id=sim.project_ids[-1])
    return sim


@pytest.fixture
def fleet(cli_sim: OECSimulator) -> OECSimulator:
    return cli_sim


def pulled(run_results: list[dict[str, object]]) -> list[str]:
    return [str(row["environment_id"]) for row in run_results]


def envs_of(sim: OECSimulator, project: uuid.UUID) -> list[str]:
    return [str(env.id) for env in sim.environments(project)]


async def test_pull_all_pulls_every_environment_of_every_project_once(
    cli: CLI, fleet: OECSimulator, tmp_path: Path
) -> None:
    everything = [e for p in fleet.project_ids for e in envs_of(fleet, p)]
    first = everything[0]

    run = await cli("pull", first, "--all", "--dest", tmp_path / "out", "--mkdir", "--json")

    assert run.returncode == 0, run  # the new environment has no backup: not a failure
    assert sorted(pulled(run.results())) == sorted(everything)  # each once
    assert pulled(run.results())[0] == first  # explicit ids first, then what --all found
    statuses = {row["environment_id"]: row["status"] for row in run.results()}
    new = str(fleet.environments(fleet.project_ids[-1])[-1].id)
    assert statuses.pop(new) == "no_backup"
    assert set(statuses.values()) == {"ok"}
    summary = run.json()["summary"]
    assert (summary["ok"], summary["no_backup"], summary["failed"]) == (9, 1, 0)


async def test_projects_exclusions_and_explicit_ids_make_a_union_without_duplicates(
    cli: CLI, fleet: OECSimulator, tmp_path: Path
) -> None:
    first, second, third = fleet.project_ids
    outsider = envs_of(fleet, third)[0]
    left_out = envs_of(fleet, second)[1]
    twice = envs_of(fleet, first)[0]

    run = await cli(
        "pull",
        outsider,
        twice,
        "--project",
        str(first),
        "--project",
        str(second),
        "--exclude",
        left_out,
        "--dest",
        tmp_path / "out",
        "--mkdir",
        "--json",
    )

    assert run.returncode == 0, run
    expected = [outsider, twice] + [
        e for e in envs_of(fleet, first) + envs_of(fleet, second) if e not in (twice, left_out)
    ]
    assert pulled(run.results()) == expected
    # --project lists only the projects asked for: no GET /projects at all.
    assert fleet.api_requests("/projects?") == []


async def test_pull_reads_ids_from_standard_input_with_from_file_dash(
    cli: CLI, fleet: OECSimulator, tmp_path: Path
) -> None:
    one, two = envs_of(fleet, fleet.project_ids[0])[:2]

    run = await cli(
        "pull",
        "--from-file",
        "-",
        "--dest",
        tmp_path / "out",
        "--mkdir",
        "--json",
        stdin=f"# from a pipe\n{one}\n\n{two}  # second\n{one}\n",
    )

    assert run.returncode == 0, run
    assert pulled(run.results()) == [one, two]


async def test_from_file_errors_name_the_file_and_the_line_before_any_request(
    cli: CLI, fleet: OECSimulator, tmp_path: Path
) -> None:
    env = envs_of(fleet, fleet.project_ids[0])[0]
    listing = tmp_path / "environments.txt"
    listing.write_text(f"# nightly\n{env}\nnot-a-uuid   # typo\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")

    from_file, from_stdin, unreadable, not_text = await asyncio.gather(
        cli("pull", "--from-file", listing, "--dest", tmp_path / "out", "--mkdir"),
        cli(
            "pull", "--from-file", "-", "--dest", tmp_path / "out", "--mkdir", stdin=f"{env}\n42\n"
        ),
        cli("pull", "--from-file", tmp_path / "missing.txt", "--dest", tmp_path / "out", "--mkdir"),
        cli("pull", "--from-file", binary, "--dest", tmp_path / "out", "--mkdir"),
    )

    for run in (from_file, from_stdin, unreadable, not_text):
        assert run.returncode == 2, run
        assert run.stdout == ""
    assert f"--from-file {listing}:3: 'not-a-uuid' is not an environment id" in from_file.stderr
    assert "--from-file <stdin>:2: '42' is not an environment id" in from_stdin.stderr
    assert "missing.txt: cannot read it (No such file or directory)" in unreadable.stderr
    assert "not a text file" in not_text.stderr
    assert fleet.requests == []
    assert not (tmp_path / "out").exists()


async def test_list_environments_shows_what_pull_all_would_pull(
    cli: CLI, fleet: OECSimulator, tmp_path: Path
) -> None:
    everything = [e for p in fleet.project_ids for e in envs_of(fleet, p)]
    first = fleet.project_ids[0]
    running_of_first = [str(e.id) for e in fleet.environments(first) if e.status == "running"]

    listed, table, narrowed, shard, pull_shard = await asyncio.gather(
        cli("list-environments", "--json"),
        cli("list-environments"),
        cli("list-environments", "--project", str(first), "--status", "running", "--json"),
        cli("list-environments", "--shard", "1/3", "--exclude", everything[0], "--json"),
        cli(
            "pull",
            "--all",
            "--shard",
            "1/3",
            "--exclude",
            everything[0],
            "--dest",
            tmp_path,
            "--json",
        ),
    )

    for run in (listed, table, narrowed, shard, pull_shard):
        assert run.returncode == 0, run
    assert [row["id"] for row in listed.results()] == everything
    assert listed.json()["summary"]["count"] == len(everything)
    assert {row["project_id"] for row in listed.results()} == set(map(str, fleet.project_ids))
    for env in everything:
        assert env in table.stdout
    for project in fleet.project_ids:
        assert fleet.project(project).name in table.stdout  # projects by name
    assert "deploying" in table.stdout
    assert [row["id"] for row in narrowed.results()] == running_of_first
    mine = [e for e in everything[1:] if shard_of(e, 3) == 1]
    assert [row["id"] for row in shard.results()] == mine
    assert pulled(pull_shard.results()) == mine  # the same selection, the same answer
