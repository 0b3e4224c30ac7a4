"""``pull --all --shard K/N`` run as N real processes, for N = 1 to 5, over 45 environments
of twelve projects: together the shards pull everything, each environment once; a re-run
pulls the same; going from N to N+1 shards moves environments only into the new shard;
the shards are balanced; and the simulator's request log shows every process under its
share of the key's budget.

The simulator's rate-limit window is one second here (and the processes are told with
``--rate-window 1``), so that the default pace of 100 reads a window, divided by N, binds
within a short test: one process alone makes about 100 API calls (13 to discover the
environments, two per environment).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from pathlib import Path

import pytest

from oec_async import shard_of
from oec_async.testing import OECSimulator, SimulatorFactory
from tests.cli._helpers import CLI, KiB, Run

ENVIRONMENTS = 45
SHARD_COUNTS = (1, 2, 3, 4, 5)
READS_PER_WINDOW = 100  # the CLI's default pace, under the platform's 120
WINDOW = ("--rate-window", "1")


@pytest.fixture
async def cli_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(
        seed=4242,
        environments=ENVIRONMENTS,
        backups_per_environment=2,
        dump_size=1 * KiB,
        filestore_size=1 * KiB,
        rate_window=1.0,
    )


async def run_shards(
    cli: CLI, sim: OECSimulator, count: int, dest: Path, *, keys: list[str]
) -> list[Run]:
    """``count`` processes at once, ``pull --all --shard K/count``, the K-th with
    ``keys[K]``."""
    runs = await asyncio.gather(
        *(
            cli(
                "pull",
                "--all",
                "--shard",
                f"{index}/{count}",
                "--dest",
                dest,
                "--mkdir",
                "--json",
                *WINDOW,
                OEC_API_KEY=keys[index],
            )
            for index in range(count)
        )
    )
    for run in runs:
        assert run.returncode == 0, run
    return list(runs)


def pulled_by(runs: list[Run]) -> list[set[uuid.UUID]]:
    """What each shard's process pulled (each one ok)."""
    shares = []
    for run in runs:
        assert {row["status"] for row in run.results()} <= {"ok"}, run
        shares.append({uuid.UUID(row["environment_id"]) for row in run.results()})
    return shares


def assert_under_share(sim: OECSimulator, key_names: list[str], share: int) -> None:
    """Every process (its own key) under ``share`` reads in every window; all of them
    together under the pace one shared key would keep. A request paced at the very end
    of a window may arrive in the next one: one request of slack per process."""
    together: dict[int, int] = {}
    for name in key_names:
        windows = sim.requests_per_window(name, budget="read")
        assert windows, name
        assert max(windows.values()) <= share + 1, (name, windows)
        for window, count in windows.items():
            together[window] = together.get(window, 0) + count
    assert max(together.values()) <= READS_PER_WINDOW + len(key_names), together


async def test_shards_split_the_fleet_stably_and_each_keeps_its_share_of_the_budget(
    cli: CLI, cli_sim: OECSimulator, tmp_path: Path
) -> None:
    sim = cli_sim
    everything = set(sim.environment_ids)
    assert len(everything) == ENVIRONMENTS
    by_count: dict[int, list[set[uuid.UUID]]] = {}

    for count in SHARD_COUNTS:
        names = [f"n{count}-shard{k}" for k in range(count)]
        keys = [sim.add_key("ro", name=name) for name in names]
        runs = await run_shards(cli, sim, count, tmp_path / f"n{count}", keys=keys)
        shares = by_count[count] = pulled_by(runs)

        # Together everything, each environment in exactly one shard.
        assert set().union(*shares) == everything
        assert sum(map(len, shares)) == ENVIRONMENTS
        # The shard the SDK's shard_of names, on this host as on any other.
        for index, share in enumerate(shares):
            assert all(shard_of(env, count) == index for env in share)
        # Balanced: each shard within three standard deviations of a fair split
        # (binomial: 45 environments, each in a shard with probability 1/N).
        mean = ENVIRONMENTS / count
        spread = 3 * math.sqrt(ENVIRONMENTS * (1 / count) * (1 - 1 / count))
        assert all(abs(len(share) - mean) <= spread for share in shares), list(map(len, shares))
        # Each process paced at its 1/N share of the default budget.
        assert_under_share(sim, names, READS_PER_WINDOW // count)

    # Going from N to N+1 shards moves environments only into the new shard.
    for count in SHARD_COUNTS[:-1]:
        before = {env: k for k, share in enumerate(by_count[count]) for env in share}
        after = {env: k for k, share in enumerate(by_count[count + 1]) for env in share}
        moved = {env for env in everything if after[env] != before[env]}
        assert all(after[env] == count for env in moved)
        assert moved  # the new shard takes some

    # Re-run with three shards sharing one key: the same split, and the shared key
    # under its budget (the processes divide it among themselves).
    shared = sim.add_key("ro", name="shared")
    again = pulled_by(await run_shards(cli, sim, 3, tmp_path / "again", keys=[shared] * 3))
    assert again == by_count[3]
    windows = sim.requests_per_window("shared", budget="read")
    assert max(windows.values()) <= READS_PER_WINDOW + 3, windows
    assert [r for r in sim.api_requests() if r.status == 429] == []
