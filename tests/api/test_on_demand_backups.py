"""Taking a backup on demand (API.md section 10) against the simulator over loopback:
one POST, never sent twice once it may have reached the server; 409 and read-only keys;
the write budget."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid

import pytest
from aiohttp import web

from oec_async import (
    APIConnectionError,
    APITimeoutError,
    BackupStatus,
    BackupType,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    OECClient,
    PermissionDeniedError,
    ServerError,
)
from oec_async.testing import OECSimulator, RequestRecord, SimulatorFactory
from tests.api._servers import tiny_api

RW_KEY = "oec_live_rw_" + "w" * 32
ENV = uuid.UUID("6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f")


@pytest.fixture
async def sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    # The clock stands still unless a test moves it: a backup taken stays pending.
    return await oec_simulator_factory(seed=21, clock_speed=0)


def posts(sim: OECSimulator) -> list[RequestRecord]:
    return sim.api_requests(method="POST")


# -- the request -----------------------------------------------------------------------------


async def test_create_backup_sends_one_post_with_the_documented_body(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]

    backup = await client.create_backup(env)

    (post,) = posts(sim)
    assert post.path.endswith(f"/environments/{env}/backups")
    assert post.budget == "write"
    assert backup.environment_id == env
    assert backup.status == BackupStatus.PENDING
    assert backup.backup_type == BackupType.MANUAL
    assert backup.task_id
    assert sim.backup(backup.id).status == "pending"


async def test_create_backup_sends_its_options() -> None:
    seen: list[object] = []

    async def record_body(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(
            {"id": str(uuid.uuid4()), "environment_id": str(ENV), "status": "pending"},
            status=201,
        )

    async with tiny_api(record_body) as base_url, OECClient(RW_KEY, base_url) as client:
        await client.create_backup(ENV)
        await client.create_backup(
            ENV, include_filestore=False, retention_type="monthly", notes="before 18.0"
        )

    assert seen == [
        {"backup_type": "manual", "include_filestore": True, "retention_type": None, "notes": None},
        {
            "backup_type": "manual",
            "include_filestore": False,
            "retention_type": "monthly",
            "notes": "before 18.0",
        },
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"include_filestore": "yes"},
        {"include_filestore": None},
        {"notes": 42},
        {"notes": "x" * 10_001},
        {"retention_type": ""},
        {"backup_type": ""},
    ],
)
async def test_bad_create_backup_arguments_are_refused_before_any_request(
    sim: OECSimulator, client: OECClient, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        await client.create_backup(sim.environment_ids[0], **kwargs)  # type: ignore[arg-type]

    assert sim.api_requests() == []


async def test_an_answer_for_another_environment_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = sim.environment_ids[:2]
    stray = sim.backups(other)[0].to_json()
    sim.faults.api_raw(json.dumps(stray).encode(), status=201, method="POST")

    with pytest.raises(InvalidResponseError, match=f"environment_id is {other}"):
        await client.create_backup(asked)


# -- never sent twice ------------------------------------------------------------------------


async def test_post_is_sent_once_when_the_connection_drops_after_the_server_acted(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    before = len(sim.backups(env))
    sim.faults.api_disconnect(after_acting=True, method="POST")

    with pytest.raises(APIConnectionError) as caught:
        await client.create_backup(env)

    assert len(posts(sim)) == 1
    assert len(sim.backups(env)) == before + 1  # the backup was made: one, not two
    message = str(caught.value)
    assert "may have been created" in message
    assert f"list_backups({env}" in message
    assert "not asked again" in message


async def test_post_is_not_resent_when_the_connection_drops_before_the_server_acted(
    sim: OECSimulator, client: OECClient
) -> None:
    # The client cannot tell this case from the one above: it must not resend either.
    env = sim.environment_ids[0]
    before = len(sim.backups(env))
    sim.faults.api_disconnect(after_acting=False, method="POST")

    with pytest.raises(APIConnectionError, match="may have been created"):
        await client.create_backup(env)

    assert len(posts(sim)) == 1
    assert len(sim.backups(env)) == before


async def test_post_that_times_out_after_sending_is_not_resent() -> None:
    arrived: list[str] = []
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.append(request.method)
        await release.wait()
        return web.json_response({}, status=201)

    async with tiny_api(slow) as base_url:
        try:
            async with OECClient(RW_KEY, base_url, timeout=0.3) as client:
                with pytest.raises(APITimeoutError, match="may have been created"):
                    await client.create_backup(ENV)
        finally:
            release.set()

    assert arrived == ["POST"]


async def test_post_answered_by_a_gateway_error_is_not_resent(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(502, method="POST", retry_after=0.01)

    with pytest.raises(ServerError, match="may have been created"):
        await client.create_backup(sim.environment_ids[0])

    assert len(posts(sim)) == 1


async def test_post_refused_with_429_is_retried_and_makes_one_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    before = len(sim.backups(env))
    sim.faults.rate_limit(method="POST", path_contains="/backups", retry_after=0.05)

    backup = await client.create_backup(env)

    assert [r.status for r in posts(sim)] == [429, 201]
    assert len(sim.backups(env)) == before + 1
    assert sim.backup(backup.id).status == "pending"


async def test_post_that_could_not_connect_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed

    async with OECClient(RW_KEY, f"http://127.0.0.1:{port}/api", max_retries=2) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.create_backup(ENV)

    attempts = [r for r in caplog.records if r.name == "oec_async.http" and "POST" in r.message]
    assert [r.levelno for r in attempts].count(logging.DEBUG) == 3  # first try and 2 retries
    assert "may have been created" not in str(caught.value)  # nothing was ever sent


async def test_post_redirected_is_not_followed(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.api_redirect(method="POST")

    with pytest.raises(InvalidResponseError, match="not followed"):
        await client.create_backup(sim.environment_ids[0])

    assert len(posts(sim)) == 1


# -- refusals --------------------------------------------------------------------------------


async def test_a_backup_already_running_is_a_conflict_naming_it(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    running = await client.create_backup(env)

    with pytest.raises(ConflictError) as caught:
        await client.create_backup(env)

    assert caught.value.backup_id == running.id
    assert caught.value.code == "backup_in_progress"
    assert str(running.id) in str(caught.value)
    assert len(posts(sim)) == 2  # the conflict is not retried


async def test_a_read_only_key_is_refused_locally_before_any_request(
    sim: OECSimulator,
) -> None:
    async with OECClient(sim.read_only_key, sim.base_url) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await client.create_backup(sim.environment_ids[0])

    assert caught.value.code == "read_only_key"
    assert "read-only" in str(caught.value)
    assert sim.api_requests() == []


async def test_a_read_only_refusal_from_the_server_is_not_retried(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(
        403, code="read_only_key", shape="detail_object", method="POST", times=None
    )

    with pytest.raises(PermissionDeniedError) as caught:
        await client.create_backup(sim.environment_ids[0])

    assert caught.value.code == "read_only_key"
    assert len(posts(sim)) == 1


# -- the write budget ------------------------------------------------------------------------


async def test_writes_are_paced_by_the_write_budget_and_reads_by_theirs(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    sim = await oec_simulator_factory(
        seed=4, environments=6, clock_speed=0, read_limit=50, write_limit=2, rate_window=0.5
    )
    async with OECClient(
        sim.api_key,
        sim.base_url,
        requests_per_minute=40,
        writes_per_minute=2,
        rate_limit_period=0.5,
    ) as client:
        await client.list_backups(sim.environment_ids[0])  # the key has been answered for
        backups = await asyncio.gather(
            *(client.create_backup(env) for env in sim.environment_ids),
            *(client.list_backups(env) for env in sim.environment_ids * 3),
        )

    assert len(backups) == 6 + 18
    assert sim.rate_limited == 0
    writes = sim.requests_per_window(budget="write")
    assert sum(writes.values()) == 6
    assert max(writes.values()) <= 2
    assert len(writes) >= 3
    reads = sim.requests_per_window(budget="read")
    assert len(reads) <= 2  # the 19 reads went at once (a window boundary may split them)


async def test_read_only_key_write_does_not_touch_the_budget(sim: OECSimulator) -> None:
    async with OECClient(sim.read_only_key, sim.base_url, writes_per_minute=1) as client:
        for _ in range(3):
            with pytest.raises(PermissionDeniedError):
                await client.create_backup(sim.environment_ids[0])
        assert client.pacer.writes is not None
        assert client.pacer.writes.paused_for() == 0


async def test_429_on_a_post_is_no_reason_to_stop_reading(sim: OECSimulator) -> None:
    sim.faults.rate_limit(method="POST", retry_after=30)  # longer than the test

    async with OECClient(sim.api_key, sim.base_url, max_retry_wait=60) as client:
        post = asyncio.create_task(client.create_backup(sim.environment_ids[0]))
        await asyncio.sleep(0.1)
        page = await asyncio.wait_for(client.list_backups(sim.environment_ids[0]), 2)
        post.cancel()
        with pytest.raises(asyncio.CancelledError):
            await post

    assert page.items
    assert [r.status for r in posts(sim)] == [429]  # the POST waits 30 s; reads go on
