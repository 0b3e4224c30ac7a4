"""Waiting for a backup taken on demand (API.md section 10), against the simulator in
simulated time: each poll moves the simulated clock on (``poll_advance``), so a ten-second
backup completes in a few dozen short polls and no test sleeps for real."""

from __future__ import annotations

import itertools
import uuid

import pytest

from oec_async import (
    Backup,
    BackupFailedError,
    BackupProgress,
    BackupStatus,
    ConfigurationError,
    OECClient,
    OECError,
    TaskStatus,
    WaitTimeoutError,
)
from oec_async._waiting import poll_interval
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory

# A 0.6-second window stands for a minute: the schedule's 5 s and 10 s become 0.05 s and
# 0.1 s, and a fifth of 100 reads per window is one read every 0.03 s.
PERIOD = 0.6


@pytest.fixture
async def sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(seed=8, clock_speed=0, poll_advance=1.0, rate_window=PERIOD)


@pytest.fixture
async def client(sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    return await oec_client_factory(sim, rate_limit_period=PERIOD)


def polls(sim: OECSimulator) -> list[float]:
    """When each poll (a task or backup read) arrived."""
    return [
        r.at
        for r in sim.api_requests(method="GET")
        if "/deployments/" in r.path or r.path.rsplit("/", 2)[-2] == "backups"
    ]


async def test_wait_for_backup_returns_the_completed_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    backup = await client.create_backup(env)

    done = await client.wait_for_backup(backup, poll_interval=0.01)

    assert isinstance(done, Backup)
    assert done.id == backup.id
    assert done.status == BackupStatus.COMPLETED
    assert done.completed_at is not None
    assert sim.backup(backup.id).status == "completed"
    assert (await client.get_download_urls(done.id)).backup_id == done.id


async def test_progress_callback_sees_the_task_move_through_its_steps(
    sim: OECSimulator, client: OECClient
) -> None:
    backup = await client.create_backup(sim.environment_ids[0])
    seen: list[BackupProgress] = []

    await client.wait_for_backup(backup, poll_interval=0.01, progress=seen.append)

    percents = [s.percent for s in seen if s.percent is not None]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    steps = [s.step for s in seen if s.step]
    assert "dumping database" in steps
    assert {s.task.status for s in seen if s.task} >= {TaskStatus.PENDING, TaskStatus.COMPLETED}
    assert seen[-1].status == BackupStatus.COMPLETED
    assert [s.elapsed for s in seen] == sorted(s.elapsed for s in seen)


async def test_watch_backup_yields_states_until_the_completed_one(
    sim: OECSimulator, client: OECClient
) -> None:
    backup = await client.create_backup(sim.environment_ids[0])

    states = [s async for s in client.watch_backup(backup, poll_interval=0.01)]

    assert states[-1].backup.is_completed
    assert not any(s.backup.is_completed for s in states[:-1])


async def test_waiting_by_id_reads_the_backup_then_follows_its_task(
    sim: OECSimulator, client: OECClient
) -> None:
    backup = await client.create_backup(sim.environment_ids[0])

    done = await client.wait_for_backup(str(backup.id), poll_interval=0.01)

    assert done.is_completed
    first, second = sim.api_requests(method="GET")[:2]
    assert first.path.endswith(f"/backups/{backup.id}")
    assert second.path.endswith(f"/deployments/{backup.task_id}")


async def test_a_failed_backup_raises_backup_failed_error_with_the_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.backup_fails(status="failed", error_message="pg_dump exited with code 1")
    backup = await client.create_backup(sim.environment_ids[0])

    with pytest.raises(BackupFailedError) as caught:
        await client.wait_for_backup(backup, poll_interval=0.01)

    assert isinstance(caught.value, OECError)
    assert caught.value.backup.id == backup.id
    assert caught.value.backup.status == BackupStatus.FAILED
    assert "pg_dump exited with code 1" in str(caught.value)


async def test_a_cancelled_backup_raises_backup_failed_error(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.backup_fails(status="cancelled", error_message="cancelled by an admin")
    backup = await client.create_backup(sim.environment_ids[0])

    with pytest.raises(BackupFailedError, match="cancelled") as caught:
        await client.wait_for_backup(backup, poll_interval=0.01)

    assert caught.value.backup.status == BackupStatus.CANCELLED


async def test_an_expired_backup_raises_backup_failed_error(
    sim: OECSimulator, client: OECClient
) -> None:
    expired = next(b for b in sim.backups(sim.environment_ids[0]) if b.status == "expired")

    with pytest.raises(BackupFailedError, match="expired"):
        await client.wait_for_backup(expired.id, poll_interval=0.01)


async def test_a_wait_longer_than_its_timeout_raises_with_the_backup_as_last_seen(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.configure(poll_advance=0)  # the clock stands still: the backup never moves
    backup = await client.create_backup(sim.environment_ids[0])

    with pytest.raises(WaitTimeoutError) as caught:
        await client.wait_for_backup(backup, timeout=0.3, poll_interval=0.05)

    assert isinstance(caught.value, OECError)
    assert caught.value.backup is not None
    assert caught.value.backup.id == backup.id
    assert caught.value.backup.status == BackupStatus.PENDING
    assert "still pending after 0.3 s" in str(caught.value)
    assert 4 <= len(polls(sim)) <= 8  # about every 0.05 s, and one last look at the end


async def test_a_purged_task_falls_back_to_polling_the_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(404, path_contains="/deployments/", times=None)
    backup = await client.create_backup(sim.environment_ids[0])

    done = await client.wait_for_backup(backup, poll_interval=0.01)

    assert done.is_completed
    assert len(sim.api_requests("/deployments/")) == 1  # tried once, then the backup


async def test_a_poll_failing_after_retries_does_not_end_the_wait(
    sim: OECSimulator,
) -> None:
    async with OECClient(
        sim.api_key, sim.base_url, rate_limit_period=PERIOD, max_retries=0
    ) as client:
        backup = await client.create_backup(sim.environment_ids[0])
        sim.faults.api_errors(503, path_contains="/deployments/", times=2)

        done = await client.wait_for_backup(backup, poll_interval=0.01)

    assert done.is_completed


async def test_a_backup_unknown_to_the_api_ends_the_wait_at_once(
    sim: OECSimulator, client: OECClient
) -> None:
    with pytest.raises(OECError) as caught:
        await client.wait_for_backup(uuid.uuid4(), poll_interval=0.01)

    assert not isinstance(caught.value, WaitTimeoutError)
    assert len(sim.api_requests()) == 1


# -- the pace --------------------------------------------------------------------------------


async def test_default_pace_polls_every_twelfth_then_every_sixth_of_the_window(
    sim: OECSimulator, client: OECClient
) -> None:
    # Minute-scaled: every 5 s for the first 30 s, then every 10 s (0.05 s, 0.3 s, 0.1 s).
    sim.configure(poll_advance=0)
    backup = await client.create_backup(sim.environment_ids[0])

    with pytest.raises(WaitTimeoutError):
        await client.wait_for_backup(backup, timeout=0.9)

    at = polls(sim)[:-1]  # the last poll is the one look at the deadline, whenever it falls
    gaps = [later - earlier for earlier, later in itertools.pairwise(at)]
    early = [g for t, g in zip(at, gaps, strict=False) if t - at[0] < PERIOD / 2 - 0.05]
    late = [g for t, g in zip(at, gaps, strict=False) if t - at[0] > PERIOD / 2 + 0.1]
    assert early
    assert late
    assert min(early) >= PERIOD / 12 - 0.01
    assert min(late) >= PERIOD / 6 - 0.01
    assert max(early) < PERIOD / 6  # not the slow pace yet


async def test_polling_never_takes_more_than_a_fifth_of_the_read_budget(
    sim: OECSimulator,
) -> None:
    # 10 reads per window: a fifth is 2 a window, slower than the schedule and than the
    # interval asked for: the budget wins. The timeout falls between two polls: none
    # comes early because the wait ends.
    sim.configure(poll_advance=0)
    async with OECClient(
        sim.api_key, sim.base_url, requests_per_minute=10, rate_limit_period=PERIOD
    ) as client:
        backup = await client.create_backup(sim.environment_ids[0])
        with pytest.raises(WaitTimeoutError):
            await client.wait_for_backup(backup, timeout=3 * PERIOD - 0.1, poll_interval=0.001)

    at = polls(sim)
    assert len(at) >= 4
    per_window = [sum(1 for t in at if start <= t < start + PERIOD - 0.02) for start in at]
    assert max(per_window) <= 10 // 5


async def test_a_backup_that_completes_just_before_the_deadline_is_seen_by_a_last_poll(
    sim: OECSimulator, client: OECClient
) -> None:
    # Polls every 0.3 s, a 0.5 s timeout: polls at 0 and 0.3 see it running, the backup
    # completes after the second one, and the last poll at the deadline finds it done.
    sim.configure(poll_advance=0)
    backup = await client.create_backup(sim.environment_ids[0])
    seen: list[BackupProgress] = []

    def complete_after_the_second_poll(state: BackupProgress) -> None:
        seen.append(state)
        if len(seen) == 2:
            sim.advance(24 * 3600)

    done = await client.wait_for_backup(
        backup, timeout=0.5, poll_interval=0.3, progress=complete_after_the_second_poll
    )

    assert done.is_completed
    assert len(seen) == 3
    assert seen[-1].elapsed >= 0.49  # at the deadline, not before


def test_the_default_schedule_in_minutes_is_five_then_ten_seconds() -> None:
    fifth_of_100 = 60.0 / (100 * 0.2)  # 3 s per read

    assert poll_interval(0, period=60, per_request=fifth_of_100, requests=1) == 5.0
    assert poll_interval(29.9, period=60, per_request=fifth_of_100, requests=1) == 5.0
    assert poll_interval(30, period=60, per_request=fifth_of_100, requests=1) == 10.0
    # a poll that read the task and the backup spends two reads: 6 s at the least
    assert poll_interval(0, period=60, per_request=fifth_of_100, requests=2) == 6.0
    # a sharded client with 25 reads a minute: a fifth is one read every 12 s
    assert poll_interval(0, period=60, per_request=60 / (25 * 0.2), requests=1) == 12.0
    # an interval asked for replaces the schedule, never the budget
    assert poll_interval(0, period=60, per_request=fifth_of_100, requests=1, asked=1) == 3.0
    assert poll_interval(0, period=60, per_request=fifth_of_100, requests=1, asked=20) == 20.0


@pytest.mark.parametrize("kwargs", [{"timeout": -1}, {"timeout": "60"}, {"poll_interval": 0}])
async def test_bad_wait_arguments_are_refused_before_any_request(
    sim: OECSimulator, client: OECClient, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        await client.wait_for_backup(uuid.uuid4(), **kwargs)  # type: ignore[arg-type]

    assert sim.api_requests() == []
