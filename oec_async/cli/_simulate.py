"""``oec-backups simulate``: the platform's simulator on loopback, until Ctrl-C or
SIGTERM (a process manager's stop), which stop it cleanly and remove its files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from oec_async.cli._output import Output
from oec_async.testing import OECSimulator, SimulatorSettings

__all__ = ["cmd_simulate"]


async def cmd_simulate(args: argparse.Namespace, out: Output) -> None:
    """Serve until stopped; prints the settings a client needs on stdout."""
    simulator = OECSimulator(
        seed=args.seed,
        environments=args.environments,
        port=args.port,
        dump_size=args.dump_size,
        settings=SimulatorSettings(read_limit=None) if args.no_rate_limit else None,
    )
    # Process managers (docker stop, systemd, CI teardown) stop a server with SIGTERM:
    # stop cleanly then too, so the simulator's temp folder of generated dumps is removed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with simulator as sim:
        print(f"OEC_BASE_URL={sim.base_url}", flush=True)
        print(f"OEC_API_KEY={sim.api_key}", flush=True)
        for env_id in sim.environment_ids:
            print(f"environment {env_id}", flush=True)
        print("simulator running; Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
    print("simulator stopped", file=sys.stderr, flush=True)
