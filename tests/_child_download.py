"""Run one download in a child process, for the kill -9 tests.

Usage: ``python _child_download.py BASE_URL API_KEY BACKUP_ID DEST [OPTIONS_JSON]``.
Prints one line per progress event of the dump (the bytes confirmed on disk), flushed,
so the parent knows how far the child got before it kills it. ``OPTIONS_JSON`` holds
download options (default: 256 KiB buffers).
"""

from __future__ import annotations

import asyncio
import json
import sys

from oec_async import OECClient
from oec_async.download import ProgressEvent

BUFFER = 256 * 1024


def report(event: ProgressEvent) -> None:
    if event.artifact == "database" and event.kind in ("progress", "start"):
        sys.stdout.write(f"{event.bytes_done}\n")
        sys.stdout.flush()


async def main(base_url: str, api_key: str, backup_id: str, dest: str, options: str) -> None:
    overrides = {"buffer_size": BUFFER, **json.loads(options)}
    async with OECClient(api_key, base_url, timeout=60.0, requests_per_minute=None) as client:
        await client.download_backup(backup_id, dest, progress=report, **overrides)


if __name__ == "__main__":
    base_url, api_key, backup_id, dest = sys.argv[1:5]
    asyncio.run(
        main(base_url, api_key, backup_id, dest, sys.argv[5] if len(sys.argv) > 5 else "{}")
    )
