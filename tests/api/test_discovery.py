"""Discovery (API.md section 8) against the simulator over loopback: projects in cursor
pages, a project's environments as a plain array, one of each, and every environment the
key sees."""

from __future__ import annotations

import json
import uuid

import pytest

from oec_async import (
    ConfigurationError,
    Environment,
    EnvironmentStatus,
    InvalidResponseError,
    NotFoundError,
    OECClient,
    Project,
)
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory


@pytest.fixture
async def fleet(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    """Seven projects holding twenty environments."""
    return await oec_simulator_factory(seed=99, environments=20, projects=7)


@pytest.fixture
async def fleet_client(fleet: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(fleet)


# -- projects: cursor pages ----------------------------------------------------------------


async def test_iter_projects_follows_every_cursor_page(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    projects = [p async for p in fleet_client.iter_projects(page_size=2)]

    assert [p.id for p in projects] == fleet.project_ids
    assert all(isinstance(p, Project) for p in projects)
    sent = fleet.api_requests("/projects")
    assert [r.query.get("limit") for r in sent] == ["2"] * 4  # 2 + 2 + 2 + 1
    assert "cursor" not in sent[0].query
    assert all(r.query.get("cursor") for r in sent[1:])
    assert len({r.query["cursor"] for r in sent[1:]}) == 3


async def test_iter_projects_with_the_default_page_size_takes_one_request(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    projects = [p async for p in fleet_client.iter_projects()]

    assert len(projects) == 7
    assert [r.query.get("limit") for r in fleet.api_requests("/projects")] == ["100"]


async def test_project_fields_are_read_and_counts_match(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    project_id = fleet.project_ids[0]

    project = await fleet_client.get_project(project_id)

    assert project.id == project_id
    assert project.name == fleet.project(project_id).name
    assert project.environment_count == len(fleet.environments(project_id))
    assert project.created_at is not None
    assert project.created_at.tzinfo is not None


async def test_a_project_scoped_key_sees_its_one_project(
    fleet: OECSimulator, oec_client_factory: ClientFactory
) -> None:
    mine = fleet.project_ids[3]
    key = fleet.add_key("ro", project_id=mine, name="project-3")

    async with OECClient(key, fleet.base_url) as client:
        projects = [p.id async for p in client.iter_projects()]
        envs = [e.id async for e in client.iter_environments()]
        with pytest.raises(NotFoundError):
            await client.get_project(fleet.project_ids[0])

    assert projects == [mine]
    assert envs == [e.id for e in fleet.environments(mine)]


async def test_a_cursor_page_that_says_more_without_a_cursor_is_refused(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    page = {"data": [], "pagination": {"has_more": True, "next_cursor": None, "total": 9}}
    fleet.faults.api_raw(json.dumps(page).encode(), path_contains="/projects")

    with pytest.raises(InvalidResponseError, match="has more but gave no next_cursor"):
        [p async for p in fleet_client.iter_projects()]


async def test_a_repeated_cursor_is_refused_instead_of_looping(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    page = {"data": [], "pagination": {"has_more": True, "next_cursor": "same", "total": 9}}
    fleet.faults.api_raw(json.dumps(page).encode(), path_contains="/projects", times=2)

    with pytest.raises(InvalidResponseError, match="repeated a cursor"):
        [p async for p in fleet_client.iter_projects()]

    assert len(fleet.api_requests("/projects")) == 2


async def test_get_project_answering_another_project_is_refused(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    asked, other = fleet.project_ids[:2]
    fleet.faults.api_raw(json.dumps(fleet.project(other).to_json(1)).encode())

    with pytest.raises(InvalidResponseError, match=f"id is {other}, asked {asked}"):
        await fleet_client.get_project(asked)


# -- environments: a plain array -----------------------------------------------------------


async def test_list_environments_reads_the_whole_plain_array(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    project_id = fleet.project_ids[1]

    envs = await fleet_client.list_environments(project_id)

    assert [e.id for e in envs] == [e.id for e in fleet.environments(project_id)]
    assert all(isinstance(e, Environment) and e.project_id == project_id for e in envs)
    (request,) = fleet.api_requests(f"/projects/{project_id}/environments")
    assert request.query == {}


async def test_list_environments_sends_the_status_filter(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    project_id = fleet.project_ids[0]
    made = fleet.add_environments_in_every_status(project_id)

    stopped = await fleet_client.list_environments(project_id, EnvironmentStatus.STOPPED)

    (request,) = fleet.api_requests(f"/projects/{project_id}/environments")
    assert request.query == {"status": "stopped"}
    assert made["stopped"] in [e.id for e in stopped]
    assert {e.status for e in stopped} == {EnvironmentStatus.STOPPED}


async def test_environments_of_every_status_are_listed_and_an_unknown_one_is_kept(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    project_id = fleet.project_ids[0]
    made = fleet.add_environments_in_every_status(project_id, unknown="hibernating")

    by_id = {e.id: e for e in await fleet_client.list_environments(project_id)}

    for status in EnvironmentStatus:
        assert by_id[made[status.value]].status is status
    assert by_id[made["hibernating"]].status == "hibernating"
    assert not isinstance(by_id[made["hibernating"]].status, EnvironmentStatus)


async def test_an_unknown_status_filter_is_sent_as_is(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    project_id = fleet.project_ids[0]
    made = fleet.add_environments_in_every_status(project_id, unknown="archived_cold")

    cold = await fleet_client.list_environments(project_id, "archived_cold")

    assert [e.id for e in cold] == [made["archived_cold"]]


async def test_environment_fields_missing_or_null_are_none(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    env_id = fleet.environment_ids[0]
    fleet.update_environment(env_id, omitted=frozenset({"status", "url", "project_id", "name"}))

    env = await fleet_client.get_environment(env_id)

    assert env.id == env_id
    assert (env.status, env.url, env.project_id, env.name) == (None, None, None, None)


async def test_get_environment_of_a_deleted_environment_is_not_found_but_its_backups_read(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    env_id = fleet.environment_ids[0]
    fleet.delete_environment(env_id)

    with pytest.raises(NotFoundError):
        await fleet_client.get_environment(env_id)
    assert (await fleet_client.list_backups(env_id)).items


async def test_a_project_listing_holding_another_projects_environment_is_refused(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    asked, other = fleet.project_ids[:2]
    stray = fleet.environments(other)[0].to_json()
    fleet.faults.api_raw(json.dumps([stray]).encode(), path_contains="/environments")

    with pytest.raises(InvalidResponseError, match=f"project_id is {other}, asked {asked}"):
        await fleet_client.list_environments(asked)


async def test_a_listing_that_is_not_an_array_is_invalid(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    fleet.faults.api_raw(b'{"items": []}', path_contains="/environments")

    with pytest.raises(InvalidResponseError, match="unexpected response shape"):
        await fleet_client.list_environments(fleet.project_ids[0])


# -- every environment the key sees --------------------------------------------------------


async def test_iter_environments_yields_every_environment_of_every_project_once(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    envs = [e.id async for e in fleet_client.iter_environments()]

    assert envs == fleet.environment_ids
    assert len(fleet.api_requests("/projects/")) == 7  # one plain array per project


async def test_iter_environments_of_chosen_projects_lists_each_project_once(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    first, second = fleet.project_ids[:2]

    envs = [e async for e in fleet_client.iter_environments([second, first, str(second)])]

    expected = fleet.environments(second) + fleet.environments(first)
    assert [e.id for e in envs] == [e.id for e in expected]
    assert fleet.api_requests("/projects?") == []  # no need to list the projects
    assert len(fleet.api_requests("/environments")) == 2


async def test_iter_environments_deduplicates_an_environment_listed_twice(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    first, second = fleet.project_ids[:2]
    shared = fleet.environments(first)[0].to_json()
    shared["project_id"] = None  # listed under both: an API that leaves project_id out
    twice = json.dumps([shared]).encode()
    fleet.faults.api_raw(twice, path_contains=f"/projects/{first}/environments")
    fleet.faults.api_raw(twice, path_contains=f"/projects/{second}/environments")

    envs = [e.id async for e in fleet_client.iter_environments([first, second])]

    assert envs == [uuid.UUID(shared["id"])]


async def test_iter_environments_with_a_status_filters_every_project(
    fleet: OECSimulator, fleet_client: OECClient
) -> None:
    stopped = [e async for e in fleet_client.iter_environments(status="stopped")]

    sent = fleet.api_requests("/environments")
    assert {r.query.get("status") for r in sent} == {"stopped"}
    assert {e.status for e in stopped} <= {EnvironmentStatus.STOPPED}
    expected = [e for e in fleet.environment_ids if fleet.environment(e).status == "stopped"]
    assert [e.id for e in stopped] == expected


@pytest.mark.parametrize("bad", [["not-a-uuid"], "6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f"])
async def test_iter_environments_refuses_bad_project_ids_before_any_request(
    fleet: OECSimulator, fleet_client: OECClient, bad: object
) -> None:
    with pytest.raises(ConfigurationError, match="project_ids"):
        [e async for e in fleet_client.iter_environments(bad)]  # type: ignore[arg-type]

    assert fleet.api_requests() == []
