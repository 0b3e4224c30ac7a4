"""Discovery routes of the simulator (API.md section 8), over loopback: projects in
cursor pages, environment lists as plain arrays, every status, scoped keys, deletion."""

from __future__ import annotations

import uuid

import pytest

from oec_async.testing import ENVIRONMENT_STATUSES, OECSimulator, SimulatorFactory
from tests.testing.conftest import API

PROJECT_FIELDS = {
    "id",
    "name",
    "odoo_version",
    "git_repo_url",
    "default_branch",
    "git_provider",
    "environment_count",
    "server_id",
    "created_at",
}
ENVIRONMENT_FIELDS = {
    "id",
    "name",
    "status",
    "url",
    "odoo_version",
    "branch",
    "last_commit",
    "cpu_cores",
    "ram_mb",
    "disk_gb",
    "project_id",
    "server_id",
    "custom_domain",
    "custom_domain_verified",
    "created_at",
    "updated_at",
}


@pytest.fixture
async def fleet(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Forty environments in ten projects."""
    return await oec_simulator_factory(seed=9, environments=40, backups_per_environment=2)


@pytest.fixture
async def fleet_api(fleet: OECSimulator, api: API) -> API:
    api.sim = fleet
    return api


# -- the organisation ------------------------------------------------------------------


async def test_the_default_world_is_one_project_holding_every_environment(
    sim: OECSimulator,
) -> None:
    (project,) = sim.project_ids

    assert [e.id for e in sim.environments(project)] == sim.environment_ids
    assert len(sim.environment_ids) == 3


async def test_environments_are_spread_over_the_projects_in_order(fleet: OECSimulator) -> None:
    held = [[e.id for e in fleet.environments(p)] for p in fleet.project_ids]

    assert len(held) == 10
    assert [len(h) for h in held] == [4] * 10
    assert [e for h in held for e in h] == fleet.environment_ids


async def test_the_same_seed_makes_the_same_organisation(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    one = await oec_simulator_factory(seed=5, environments=7)
    two = await oec_simulator_factory(seed=5, environments=7)

    assert one.project_ids == two.project_ids
    assert one.environment_ids == two.environment_ids
    assert [one.environment(e) for e in one.environment_ids] == [
        two.environment(e) for e in two.environment_ids
    ]


# -- GET /projects: cursor pages -----------------------------------------------------------


async def test_projects_come_in_cursor_pages_until_has_more_is_false(
    fleet: OECSimulator, fleet_api: API
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        answer = await fleet_api.get("/projects", params=params)
        assert answer.status == 200
        assert set(answer.body) == {"data", "pagination"}
        pagination = answer.body["pagination"]
        assert pagination["total"] == 10
        seen += [p["id"] for p in answer.body["data"]]
        pages += 1
        if not pagination["has_more"]:
            assert pagination["next_cursor"] is None
            break
        cursor = pagination["next_cursor"]
        assert isinstance(cursor, str)

    assert pages == 4  # 3 + 3 + 3 + 1
    assert seen == [str(p) for p in fleet.project_ids]


async def test_projects_default_page_is_twenty(fleet_api: API) -> None:
    answer = await fleet_api.get("/projects")

    assert len(answer.body["data"]) == 10
    assert answer.body["pagination"] == {"has_more": False, "next_cursor": None, "total": 10}


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_projects_limit_outside_1_to_100_is_422(fleet_api: API, limit: str) -> None:
    answer = await fleet_api.get("/projects", params={"limit": limit})

    assert answer.status == 422


@pytest.mark.parametrize("cursor", ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%%%"])
async def test_a_cursor_the_simulator_did_not_make_is_400(fleet_api: API, cursor: str) -> None:
    answer = await fleet_api.get("/projects", params={"cursor": cursor})

    assert answer.status == 400
    assert answer.error_code() == "invalid_cursor"


async def test_project_fields_are_those_of_the_api_some_missing_or_null(
    fleet: OECSimulator, fleet_api: API
) -> None:
    projects = (await fleet_api.get("/projects", params={"limit": "100"})).body["data"]

    assert all(set(p) <= PROJECT_FIELDS and "id" in p for p in projects)
    assert any(set(p) < PROJECT_FIELDS for p in projects)  # a field missing
    assert any(p.get("git_repo_url") is None for p in projects)  # a field null
    assert [p["environment_count"] for p in projects] == [4] * 10


async def test_one_project_is_the_same_as_in_the_list(fleet: OECSimulator, fleet_api: API) -> None:
    listed = (await fleet_api.get("/projects")).body["data"][2]

    answer = await fleet_api.get(f"/projects/{listed['id']}")

    assert answer.status == 200
    assert answer.body == listed


@pytest.mark.parametrize("project", [str(uuid.UUID(int=7)), "not-a-uuid"])
async def test_an_unknown_project_is_404(fleet_api: API, project: str) -> None:
    assert (await fleet_api.get(f"/projects/{project}")).status == 404
    assert (await fleet_api.get(f"/projects/{project}/environments")).status == 404


# -- a project's environments: a plain array -----------------------------------------------


async def test_a_projects_environments_are_a_plain_json_array(
    fleet: OECSimulator, fleet_api: API
) -> None:
    project = fleet.project_ids[1]

    answer = await fleet_api.get(f"/projects/{project}/environments")

    assert answer.status == 200
    assert isinstance(answer.body, list)
    assert [e["id"] for e in answer.body] == [str(e.id) for e in fleet.environments(project)]
    assert all(e["project_id"] == str(project) for e in answer.body)
    assert all(set(e) <= ENVIRONMENT_FIELDS and "id" in e for e in answer.body)


async def test_environment_fields_are_sometimes_missing_or_null(
    fleet: OECSimulator, fleet_api: API
) -> None:
    envs = [
        e
        for p in fleet.project_ids
        for e in (await fleet_api.get(f"/projects/{p}/environments")).body
    ]

    assert any(set(e) < ENVIRONMENT_FIELDS for e in envs)
    assert any(e.get("custom_domain") is None for e in envs)
    assert any(e.get("custom_domain") is not None for e in envs)
    assert {e["status"] for e in envs} == {"running", "stopped", "paused", "error"}


async def test_every_status_and_an_unknown_one_are_listed_and_filtered(
    sim: OECSimulator, api: API
) -> None:
    project = sim.project_ids[0]
    made = sim.add_environments_in_every_status(project)

    listed = (await api.get(f"/projects/{project}/environments")).body
    statuses = {e["status"] for e in listed}
    by_status = {
        status: (await api.get(f"/projects/{project}/environments", params={"status": status}))
        for status in made
    }

    assert statuses >= {*ENVIRONMENT_STATUSES, "hibernating"}
    for status, answer in by_status.items():
        held = [str(e.id) for e in sim.environments(project) if e.status == status]
        assert [e["id"] for e in answer.body] == held, status
        assert str(made[status]) in held
    assert sim.backups(made["pending"]) == []
    assert sim.latest_completed(made["paused"]) is not None


async def test_a_status_filter_that_matches_nothing_is_an_empty_array(
    sim: OECSimulator, api: API
) -> None:
    answer = await api.get(
        f"/projects/{sim.project_ids[0]}/environments", params={"status": "cloning"}
    )

    assert (answer.status, answer.body) == (200, [])


async def test_active_only_lists_leave_out_stopped_paused_errored_and_unknown(
    sim: OECSimulator, api: API
) -> None:
    project = sim.project_ids[0]
    made = sim.add_environments_in_every_status(project)
    sim.configure(active_environments_only=True)

    listed = {e["status"] for e in (await api.get(f"/projects/{project}/environments")).body}
    count = (await api.get(f"/projects/{project}")).body["environment_count"]
    one = await api.get(f"/environments/{made['stopped']}")

    assert listed == {"pending", "cloning", "deploying", "running"}
    assert count == len([e for e in sim.environments(project) if e.status in listed])
    assert one.status == 200  # only the lists leave it out


# -- one environment -------------------------------------------------------------------------


async def test_one_environment_answers_its_fields(sim: OECSimulator, api: API) -> None:
    env = sim.environment_ids[1]

    answer = await api.get(f"/environments/{env}")

    assert answer.status == 200
    assert answer.body == sim.environment(env).to_json()
    assert answer.body["project_id"] == str(sim.project_ids[0])


async def test_a_deleted_environment_is_404_and_unlisted_while_its_backups_stay_readable(
    sim: OECSimulator, api: API
) -> None:
    env = sim.environment_ids[0]
    backup = sim.latest_completed(env)
    sim.delete_environment(env)

    one = await api.get(f"/environments/{env}")
    listed = (await api.get(f"/projects/{sim.project_ids[0]}/environments")).body
    backups = await api.get(f"/environments/{env}/backups")
    detail = await api.get(f"/backups/{backup.id}")
    urls = await api.get(f"/backups/{backup.id}/download")
    take = await api.post(f"/environments/{env}/backups", body={})

    assert one.status == 404
    assert str(env) not in [e["id"] for e in listed]
    assert env not in sim.environment_ids
    assert backups.status == 200
    assert backups.body["total"] == 15
    assert detail.status == 200
    assert urls.status == 200
    assert take.status == 404


async def test_environment_changes_show_in_the_api(sim: OECSimulator, api: API) -> None:
    env = sim.environment_ids[0]

    sim.update_environment(env, status="paused", omitted=frozenset({"url", "branch"}))
    answer = await api.get(f"/environments/{env}")

    assert answer.body["status"] == "paused"
    assert "url" not in answer.body
    assert "branch" not in answer.body


# -- a project-scoped key --------------------------------------------------------------------


async def test_a_project_scoped_key_sees_its_one_project_and_nothing_else(
    fleet: OECSimulator, fleet_api: API
) -> None:
    mine, other = fleet.project_ids[3], fleet.project_ids[4]
    key = fleet.add_key(project_id=mine, name="shard-3")
    my_env = fleet.environments(mine)[0].id
    other_env = fleet.environments(other)[0].id
    other_backup = fleet.latest_completed(other_env).id

    listed = await fleet_api.get("/projects", key=key)
    answers = {
        "own project": await fleet_api.get(f"/projects/{mine}", key=key),
        "own environment": await fleet_api.get(f"/environments/{my_env}", key=key),
        "other project": await fleet_api.get(f"/projects/{other}", key=key),
        "other list": await fleet_api.get(f"/projects/{other}/environments", key=key),
        "other environment": await fleet_api.get(f"/environments/{other_env}", key=key),
        "other backups": await fleet_api.get(f"/environments/{other_env}/backups", key=key),
        "other backup": await fleet_api.get(f"/backups/{other_backup}", key=key),
    }

    assert [p["id"] for p in listed.body["data"]] == [str(mine)]
    assert listed.body["pagination"] == {"has_more": False, "next_cursor": None, "total": 1}
    assert {name: a.status for name, a in answers.items()} == {
        "own project": 200,
        "own environment": 200,
        "other project": 404,
        "other list": 404,
        "other environment": 404,
        "other backups": 404,
        "other backup": 404,
    }
    assert {r.key_id for r in fleet.api_requests()} == {"shard-3"}
