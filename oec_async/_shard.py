"""Which of N machines pulls an environment: rendezvous (highest-random-weight) hashing.

Every shard scores the environment with a fixed hash of ``"<shard>:<uuid>"`` and the
highest score takes it. Nothing is shared or stored between the machines, and:

- each environment lands in exactly one shard, the same on every host and Python version
  (BLAKE2b over the canonical UUID text, never Python's salted ``hash()``);
- going from N to N+1 shards moves only the environments the new shard now scores
  highest: a shard's old environments go nowhere else, so a growing fleet re-pulls little;
- the split is even in expectation (each shard gets about 1/N).
"""

from __future__ import annotations

import hashlib
import uuid

from oec_async._config import check_count, coerce_uuid

__all__ = ["shard_of", "shard_score"]


def shard_score(shard: int, env_id: uuid.UUID) -> int:
    """The weight of ``env_id`` in ``shard``: the first 8 bytes of
    ``blake2b(f"{shard}:{env_id}", digest_size=16)`` as a big-endian integer.

    Part of the contract: changing it moves environments between machines.
    """
    digest = hashlib.blake2b(f"{shard}:{env_id}".encode("ascii"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(env_id: uuid.UUID | str, count: int) -> int:
    """The shard, in ``0..count-1``, that pulls this environment.

    ::

        mine = [env for env in envs if shard_of(env, 8) == int(os.environ["JOB_COMPLETION_INDEX"])]

    Args:
        env_id: the environment's id (``uuid.UUID`` or a UUID string, any case).
        count: how many shards there are (>= 1).

    Returns:
        The shard with the highest :func:`shard_score` (the lowest index on a tie).

    Raises:
        ConfigurationError: ``env_id`` is not a UUID, or ``count`` is not an integer >= 1.
    """
    env = coerce_uuid(env_id, "env_id")
    check_count(count, "count", minimum=1)
    return max(range(count), key=lambda shard: (shard_score(shard, env), -shard))
