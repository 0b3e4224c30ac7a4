"""A contender: ``download_backup`` of one backup in a fresh process, as a user would run it.

Usage: python -m benchmarks.oec_download BACKUP_ID DEST [--segments N]
(OEC_API_KEY and OEC_BASE_URL from the environment.) Exits non-zero unless verified.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from oec_async import OECClient
from oec_async.download import DownloadOptions


async def _main(args: argparse.Namespace) -> int:
    async with OECClient(requests_per_minute=None) as client:
        options = DownloadOptions(segments=args.segments) if args.segments else DownloadOptions()
        result = await client.download_backup(args.backup_id, args.dest, options=options)
    return 0 if result.verified else 3


def _report_peak_rss() -> None:
    """Print this process's own peak RSS (VmHWM) for the harness."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                print(f"VmHWM-KiB {line.split()[1]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("backup_id")
    parser.add_argument("dest")
    parser.add_argument("--segments", type=int)
    code = asyncio.run(_main(parser.parse_args()))
    _report_peak_rss()
    return code


if __name__ == "__main__":
    sys.exit(main())
