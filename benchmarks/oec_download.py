"""A contender: ``download_backup`` of one backup in a fresh process, as a user would run it.

Usage: python -m benchmarks.oec_download BACKUP_ID DEST [--segments N] [--segment-probe S]
       [--max-connections-per-host N] [--cafile CA.pem]
(OEC_API_KEY and OEC_BASE_URL from the environment.) Exits non-zero unless verified.

Besides the harness's whole-process measurement, it reports the time and CPU of
``download_backup`` alone (``IN-PROCESS wall cpu``: interpreter started, imports done,
client made) and its own peak RSS (``VmHWM-KiB``).
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from typing import Any

from oec_async import OECClient
from oec_async._speed import run
from oec_async.download import DownloadOptions


async def _main(args: argparse.Namespace) -> int:
    # Only what the harness asks for differs from the defaults a user gets.
    client_settings: dict[str, Any] = {"requests_per_minute": None}
    if args.max_connections_per_host:
        client_settings["max_connections_per_host"] = args.max_connections_per_host
        client_settings["max_connections"] = max(16, args.max_connections_per_host)
    if args.cafile:
        client_settings["ssl"] = ssl.create_default_context(cafile=args.cafile)
    option_settings: dict[str, Any] = {}
    if args.segments:
        option_settings["segments"] = args.segments
    if args.segment_probe is not None:
        option_settings["segment_probe"] = args.segment_probe
    options = DownloadOptions(**option_settings)
    async with OECClient(**client_settings) as client:
        wall, cpu = time.perf_counter(), time.process_time()
        result = await client.download_backup(args.backup_id, args.dest, options=options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"IN-PROCESS {wall:.6f} {cpu:.6f}", flush=True)
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
    parser.add_argument("--segment-probe", type=float)
    parser.add_argument("--max-connections-per-host", type=int)
    parser.add_argument("--cafile")
    # As a user's script would run it: on uvloop when the speed extra is installed.
    code = run(_main(parser.parse_args()))
    _report_peak_rss()
    return code


if __name__ == "__main__":
    sys.exit(main())
