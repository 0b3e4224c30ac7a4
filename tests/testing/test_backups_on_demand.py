"""Backups taken on demand (API.md section 10), over loopback: the POST, the backup
moving through its statuses in simulated time, its task, 409, read-only keys, and the
switches that let a client prove it never sends a POST twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

import aiohttp
import pytest

from oec_async.testing import OECSimulator
from tests.testing.conftest import API

BODY = {"backup_type": "manual", "include_filestore": True, "retention_type": None, "notes": None}


@pytest.fixture
def frozen(sim: OECSimulator) -> OECSimulator:
    """A simulator whose clock moves only when the test says: 5 s queued, 60 s running."""
    sim.configure(clock_speed=0, backup_queue_seconds=5, backup_run_seconds=60)
    return sim


def env_of(sim: OECSimulator) -> uuid.UUID:
    return sim.environment_ids[0]


async def test_post_answers_201_with_a_pending_backup_and_its_task(
    frozen: OECSimulator, api: API
) -> None:
    env = env_of(frozen)
    body = {**BODY, "notes": "before the upgrade", "retention_type": "monthly"}

    answer = await api.post(f"/environments/{env}/backups", body=body)

    assert answer.status == 201
    backup = answer.body
    assert backup["status"] == "pending"
    assert backup["environment_id"] == str(env)
    assert backup["backup_type"] == "manual"
    assert (backup["notes"], backup["retention_type"]) == ("before the upgrade", "monthly")
    assert uuid.UUID(backup["task_id"])
    assert backup["started_at"] is None
    assert backup["completed_at"] is None
    assert frozen.backups(env)[0].id == uuid.UUID(backup["id"])  # the newest in the list


async def test_the_backup_runs_pending_then_in_progress_then_completed_in_simulated_time(
    frozen: OECSimulator, api: API
) -> None:
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body
    path, task = f"/backups/{created['id']}", f"/deployments/{created['task_id']}"
    seen = []
    for step in (0, 4, 2, 30, 27, 2):  # t = 0, 4, 6, 36, 63, 65
        frozen.advance(step)
        backup, deployment = (await api.get(path)).body, (await api.get(task)).body
        seen.append((backup["status"], deployment["status"], deployment["progress_percent"]))

    assert seen == [
        ("pending", "pending", 0),
        ("pending", "pending", 0),
        ("in_progress", "running", 1),
        ("in_progress", "running", 51),
        ("in_progress", "running", 96),
        ("completed", "completed", 100),
    ]


async def test_a_completed_backup_has_sizes_and_times_and_can_be_downloaded(
    frozen: OECSimulator, api: API
) -> None:
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body
    frozen.advance(65)

    backup = (await api.get(f"/backups/{created['id']}")).body
    urls = await api.get(f"/backups/{created['id']}/download")

    assert backup["status"] == "completed"
    assert backup["database_size"] > 0
    assert backup["filestore_size"] > 0
    assert backup["started_at"] < backup["completed_at"]
    assert backup["duration_seconds"] == 60
    assert urls.status == 200
    assert frozen.latest_completed(env_of(frozen)).id == uuid.UUID(created["id"])


async def test_the_task_has_the_documented_fields(frozen: OECSimulator, api: API) -> None:
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body
    frozen.advance(20)

    task = (await api.get(f"/deployments/{created['task_id']}")).body

    assert set(task) == {
        "id",
        "type",
        "status",
        "environment_id",
        "progress_percent",
        "current_step",
        "started_at",
        "completed_at",
        "error_message",
    }
    assert (task["id"], task["type"], task["status"]) == (created["task_id"], "backup", "running")
    assert task["environment_id"] == str(env_of(frozen))
    assert task["current_step"] == "dumping database"
    assert task["started_at"] is not None
    assert (task["completed_at"], task["error_message"]) == (None, None)


async def test_a_backup_without_filestore_has_no_filestore_url(
    frozen: OECSimulator, api: API
) -> None:
    body = {**BODY, "include_filestore": False}
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=body)).body
    frozen.advance(65)

    urls = (await api.get(f"/backups/{created['id']}/download")).body

    assert urls["filestore_url"] is None
    assert urls["database_url"] is not None


async def test_an_empty_body_takes_a_default_backup(frozen: OECSimulator, api: API) -> None:
    answer = await api.post(f"/environments/{env_of(frozen)}/backups", data=b"")

    assert answer.status == 201
    assert answer.body["backup_type"] == "manual"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"include_filestore": "yes"}', "include_filestore"),
        (b'{"backup_type": "nightly"}', "backup_type"),
        (b'{"notes": 42}', "notes"),
        (b'{"retention_type": "' + b"x" * 65 + b'"}', "retention_type"),
    ],
)
async def test_a_bad_body_is_422_naming_the_field_and_takes_no_backup(
    frozen: OECSimulator, api: API, body: bytes, field: str
) -> None:
    env = env_of(frozen)
    before = len(frozen.backups(env))

    answer = await api.post(f"/environments/{env}/backups", data=body)

    assert answer.status == 422
    assert answer.body["detail"][0]["loc"] == ["body", field]
    assert len(frozen.backups(env)) == before


# -- failure ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "cancelled"])
async def test_a_backup_fails_part_way_when_a_switch_says_so(
    frozen: OECSimulator, api: API, status: Literal["failed", "cancelled"]
) -> None:
    rule = frozen.faults.backup_fails(status=status, at_percent=40, error_message="disk full")
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body
    frozen.advance(5 + 23)  # 23 s of 60 is under 40 %
    running = (await api.get(f"/deployments/{created['task_id']}")).body
    frozen.advance(2)

    task = (await api.get(f"/deployments/{created['task_id']}")).body
    backup = (await api.get(f"/backups/{created['id']}")).body

    assert running["status"] == "running"
    assert (task["status"], task["progress_percent"], task["error_message"]) == (
        status,
        40,
        "disk full",
    )
    assert task["completed_at"] is not None
    assert (backup["status"], backup["error_message"]) == (status, "disk full")
    assert rule.fired == 1
    assert (await api.get(f"/backups/{created['id']}/download")).status == 400


async def test_a_failure_switch_for_another_environment_leaves_this_one_alone(
    frozen: OECSimulator, api: API
) -> None:
    rule = frozen.faults.backup_fails(environment_id=frozen.environment_ids[1])
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body
    frozen.advance(65)

    assert (await api.get(f"/backups/{created['id']}")).body["status"] == "completed"
    assert frozen.faults.unfired() == [rule]


# -- 409 and 403 -------------------------------------------------------------------------


async def test_a_second_post_while_one_runs_is_409_naming_the_running_backup(
    frozen: OECSimulator, api: API
) -> None:
    env = env_of(frozen)
    first = (await api.post(f"/environments/{env}/backups", body=BODY)).body
    frozen.advance(10)

    second = await api.post(f"/environments/{env}/backups", body=BODY)
    other_env = await api.post(f"/environments/{frozen.environment_ids[1]}/backups", body=BODY)
    frozen.advance(60)
    after = await api.post(f"/environments/{env}/backups", body=BODY)

    assert second.status == 409
    assert second.error_code() == "backup_in_progress"
    assert first["id"] in second.body["message"]
    assert second.body["details"] == {"backup_id": first["id"], "task_id": first["task_id"]}
    assert other_env.status == 201
    assert after.status == 201  # the first one ended


async def test_a_read_only_key_gets_403_read_only_key_and_no_backup(
    frozen: OECSimulator, api: API
) -> None:
    env = env_of(frozen)
    before = len(frozen.backups(env))

    answer = await api.post(f"/environments/{env}/backups", key=frozen.read_only_key, body=BODY)

    assert answer.status == 403
    assert answer.error_code() == "read_only_key"
    assert len(frozen.backups(env)) == before


async def test_an_unknown_environment_is_404(frozen: OECSimulator, api: API) -> None:
    assert (await api.post(f"/environments/{uuid.uuid4()}/backups", body=BODY)).status == 404


# -- simulated time: steps per poll, real time --------------------------------------------


async def test_poll_advance_moves_the_backup_on_with_each_poll(
    frozen: OECSimulator, api: API
) -> None:
    frozen.configure(poll_advance=20)
    created = (await api.post(f"/environments/{env_of(frozen)}/backups", body=BODY)).body

    statuses = [
        (await api.get(f"/deployments/{created['task_id']}")).body["status"] for _ in range(4)
    ]

    assert statuses == ["running", "running", "running", "completed"]  # t = 20, 40, 60, 80


async def test_at_clock_speed_the_backup_completes_in_real_time(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(clock_speed=1000, backup_queue_seconds=5, backup_run_seconds=20)
    created = (await api.post(f"/environments/{env_of(sim)}/backups", body=BODY)).body

    async with asyncio.timeout(5):
        while (await api.get(f"/backups/{created['id']}")).body["status"] != "completed":
            await asyncio.sleep(0.01)  # 25 simulated seconds take about 25 ms


async def test_a_seeded_failed_backups_task_answers_too(frozen: OECSimulator, api: API) -> None:
    failed = next(b for b in frozen.backups(env_of(frozen)) if b.status == "failed")

    task = await api.get(f"/deployments/{failed.shown_task_id}")

    assert task.status == 200
    assert (task.body["status"], task.body["error_message"]) == ("failed", failed.error_message)
    assert (await api.get("/deployments/no-such-task")).status == 404


# -- never twice ---------------------------------------------------------------------------


async def test_a_post_that_acted_and_then_lost_its_connection_made_exactly_one_backup(
    frozen: OECSimulator, api: API
) -> None:
    env = env_of(frozen)
    before = len(frozen.backups(env))
    rule = frozen.faults.api_disconnect(after_acting=True, method="POST")

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post(f"/environments/{env}/backups", body=BODY)

    assert rule.fired == 1
    assert len(frozen.backups(env)) == before + 1
    assert frozen.backups(env)[0].status == "pending"
    (post,) = frozen.api_requests(method="POST")
    assert post.status == 0  # no answer was sent


async def test_a_post_dropped_before_acting_made_no_backup(frozen: OECSimulator, api: API) -> None:
    env = env_of(frozen)
    before = len(frozen.backups(env))
    frozen.faults.api_disconnect(after_acting=False, method="POST")

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post(f"/environments/{env}/backups", body=BODY)

    assert len(frozen.backups(env)) == before


async def test_a_429_before_acting_makes_no_backup(frozen: OECSimulator, api: API) -> None:
    env = env_of(frozen)
    before = len(frozen.backups(env))
    frozen.faults.rate_limit(method="POST", path_contains="/backups", retry_after=1)

    refused = await api.post(f"/environments/{env}/backups", body=BODY)
    listed = await api.get(f"/environments/{env}/backups")  # a GET is not refused
    accepted = await api.post(f"/environments/{env}/backups", body=BODY)

    assert (refused.status, listed.status, accepted.status) == (429, 200, 201)
    assert len(frozen.backups(env)) == before + 1


async def test_with_no_queue_and_no_run_time_the_backup_is_completed_at_the_next_look(
    sim: OECSimulator, api: API
) -> None:
    sim.configure(clock_speed=0, backup_queue_seconds=0, backup_run_seconds=0)

    created = await api.post(f"/environments/{env_of(sim)}/backups", body=BODY)
    task = (await api.get(f"/deployments/{created.body['task_id']}")).body

    assert created.body["status"] == "pending"  # as the POST always answers
    assert (task["status"], task["progress_percent"], task["current_step"]) == (
        "completed",
        100,
        "done",
    )
