"""Run one download in a child process, for the kill -9 test.

Usage: ``python _child_download.py BASE_URL API_KEY BACKUP_ID DEST``. Prints one line per
progress event of the dump (the bytes confirmed on disk), flushed, so the parent knows
how far the child got before it kills it.
"""

from __future__ import annotations

import asyncio
import sys

from oec_async import OECClient
from oec_async.download import ProgressEvent

BUFFER = 256 * 1024


def report(event: ProgressEvent) -> None:
    if event.artifact == "database" and event.kind == "progress":
        sys.stdout.write(f"{event.bytes_done}\n")
        sys.stdout.flush()


async def main(base_url: str, api_key: str, backup_id: str, dest: str) -> None:
    async with OECClient(api_key, base_url, timeout=60.0) as client:
        await client.download_backup(backup_id, dest, progress=report, buffer_size=BUFFER)


if __name__ == "__main__":
    base_url, api_key, backup_id, dest = sys.argv[1:5]
    asyncio.run(main(base_url, api_key, backup_id, dest))
