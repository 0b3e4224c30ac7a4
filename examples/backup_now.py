"""Take a backup now, wait for it, download it: before an upgrade, say.

OEC_API_KEY=oec_live_rw_... python examples/backup_now.py ENV_ID [DEST]
"""

import asyncio
import sys

from oec_async import BackupFailedError, ConflictError, OECClient, WaitTimeoutError
from oec_async.models import BackupProgress


def show(state: BackupProgress) -> None:
    print(f"{state.percent or 0:3.0f}% {state.step or state.status}")


async def backup_now(env_id: str, dest: str) -> int:
    async with OECClient() as client:  # an oec_live_rw_ key: a read-only one is refused
        try:
            backup = await client.create_backup(env_id, notes="before the 18.0 upgrade")
        except ConflictError as running:  # one is running already: wait for that one
            if running.backup_id is None:
                raise
            backup = await client.get_backup(running.backup_id)
        try:
            done = await client.wait_for_backup(backup, timeout=3600, progress=show)
        except (BackupFailedError, WaitTimeoutError) as failed:
            print("no backup to download:", failed)
            return 1
        result = await client.download_backup(done, dest)
        print(result.directory, "verified" if result.verified else "NOT verified")
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(backup_now(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ".")))
