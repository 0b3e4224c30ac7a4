"""The newest backup of every environment the key sees, or of this machine's share of
them (SHARD=K/N: rendezvous hashing, the same on every host).

    OEC_API_KEY=oec_live_ro_... SHARD=0/4 python examples/pull_fleet.py DEST
"""

import asyncio
import os
import sys

from oec_async import OECClient, shard_of


async def main(dest: str) -> int:
    index, count = map(int, os.environ.get("SHARD", "0/1").split("/"))
    # Processes sharing one key share its budget: each takes its share of 100 a minute.
    async with OECClient(requests_per_minute=max(1, 100 // count)) as client:
        mine = [
            env.id async for env in client.iter_environments() if shard_of(env.id, count) == index
        ]
        results = await client.pull_latest(mine, dest, concurrency=4)
    for r in results:  # input order, each environment once
        print(r.environment_id, r.status, r.backup_id, r.error or "")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
