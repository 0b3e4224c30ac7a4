"""shard_of: rendezvous hashing of environment ids over N machines."""

from __future__ import annotations

import collections
import math
import subprocess
import sys
import uuid

import pytest

from oec_async import ConfigurationError, shard_of
from oec_async._shard import shard_score

NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
FLEET = [uuid.uuid5(NAMESPACE, f"env-{n}") for n in range(2000)]

# Pinned: a change of hash (or of the "<shard>:<uuid>" text) moves environments between
# machines, and must be a deliberate, announced change.
GOLDEN = {
    "c7e4bcf4-4da2-53b1-8381-3af848eba1b7": [0, 0, 0, 4, 4],
    "0a032cab-06a4-52cb-92f3-a3d122268b7e": [0, 0, 3, 3, 7],
    "d5c404d6-68b1-5075-8ac9-c6d8ec3afdff": [0, 0, 3, 3, 3],
    "ade569dc-a575-5eab-b73f-aede2764392e": [1, 1, 1, 4, 4],
    "308c3588-ee18-50e5-91a7-713100df3351": [0, 0, 0, 0, 6],
    "d3408438-f16f-55b2-ae75-e5e1477999b7": [1, 2, 2, 4, 6],
    "547eb6b6-5417-5771-83d1-abc98f2532ff": [0, 0, 0, 0, 0],
    "20939b82-791b-5a9a-b770-94322b374c1e": [1, 1, 1, 1, 1],
}
COUNTS = (2, 3, 4, 5, 8)


def shards(count: int) -> dict[int, set[uuid.UUID]]:
    held: dict[int, set[uuid.UUID]] = collections.defaultdict(set)
    for env in FLEET:
        held[shard_of(env, count)].add(env)
    return held


def test_golden_assignments_are_pinned() -> None:
    assert {env: [shard_of(env, n) for n in COUNTS] for env in GOLDEN} == GOLDEN
    assert shard_score(0, uuid.UUID("c7e4bcf4-4da2-53b1-8381-3af848eba1b7")) == (
        17959523511411017042
    )


@pytest.mark.parametrize("count", range(1, 9))
def test_every_environment_is_in_exactly_one_shard_and_all_are_covered(count: int) -> None:
    held = shards(count)

    assert set(held) <= set(range(count))
    assert sum(len(envs) for envs in held.values()) == len(FLEET)  # pairwise disjoint
    assert set().union(*held.values()) == set(FLEET)


@pytest.mark.parametrize("count", range(1, 9))
def test_growing_by_one_shard_moves_environments_only_into_the_new_shard(count: int) -> None:
    moved = [env for env in FLEET if shard_of(env, count) != shard_of(env, count + 1)]

    assert moved  # the new shard takes its share...
    assert {shard_of(env, count + 1) for env in moved} == {count}  # ...and only it does


@pytest.mark.parametrize("count", [2, 3, 4, 5, 8, 16])
def test_shards_are_balanced_within_four_standard_deviations(count: int) -> None:
    # Each shard's size is binomial(2000, 1/N) for a good hash: within 4 standard
    # deviations of 2000/N (at N=4, 500 +- 77; at N=16, 125 +- 43). A biased hash, or one
    # that ignores part of the id, lands far outside.
    sizes = [len(envs) for envs in shards(count).values()]

    assert len(sizes) == count
    p = 1 / count
    expected, deviation = len(FLEET) * p, math.sqrt(len(FLEET) * p * (1 - p))
    assert all(abs(size - expected) <= 4 * deviation for size in sizes), sizes


def test_the_id_may_be_a_uuid_or_a_string_in_any_case() -> None:
    env = FLEET[0]

    assert shard_of(env, 5) == shard_of(str(env), 5) == shard_of(str(env).upper(), 5)


def test_assignment_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "import uuid, sys; from oec_async import shard_of; "
        "print([shard_of(uuid.UUID(e), 7) for e in sys.argv[1:]])"
    )
    sample = [str(env) for env in FLEET[:50]]
    done = subprocess.run(
        [sys.executable, "-c", code, *sample],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )

    assert done.stdout.strip() == str([shard_of(env, 7) for env in FLEET[:50]])


@pytest.mark.parametrize("count", [0, -1, 1.5, "4", True, None])
def test_bad_count_is_refused(count: object) -> None:
    with pytest.raises(ConfigurationError, match="count must be an integer >= 1"):
        shard_of(FLEET[0], count)  # type: ignore[arg-type]


def test_bad_environment_id_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="env_id must be a UUID"):
        shard_of("not-a-uuid", 3)
