"""Download an environment's newest completed backup, verified, with progress.

OEC_API_KEY=oec_live_ro_... python examples/download_latest.py ENV_ID DEST
"""

import asyncio
import sys

from oec_async import OECClient
from oec_async.download import ProgressEvent


def progress(event: ProgressEvent) -> None:
    if event.kind in ("start", "retry", "restart", "done"):
        print(f"{event.artifact}: {event.kind} at {event.bytes_done} of {event.total} bytes")


async def main(env_id: str, dest: str) -> None:
    async with OECClient() as client:
        latest = await client.latest_backup(env_id)
        if latest is None:
            raise SystemExit(f"environment {env_id} has no completed backup yet")
        result = await client.download_backup(latest, dest, progress=progress)
        print(result.directory, result.verified)
        for f in result.files:  # manifest, database, filestore
            print(f.path, f.size, f.sha256, f.verified, f.resumed_from, f.bytes_transferred)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
