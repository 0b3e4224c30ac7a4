"""``oec-backups simulate``: the platform's simulator on loopback, until Ctrl-C or
SIGTERM (a process manager's stop), which stop it cleanly and remove its files.

It prints shell ``export`` lines for the client's settings, then one comment line per
project and environment, then ``# ready``: the output can be sourced (``. ./sim.env``)
once that last line is there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import sys
from datetime import UTC, datetime, timedelta

from oec_async.cli._output import Output
from oec_async.errors import ConfigurationError
from oec_async.testing import OECSimulator, SimulatorSettings

__all__ = ["cmd_simulate"]


def _settings(args: argparse.Namespace) -> SimulatorSettings:
    if args.no_rate_limit:
        return SimulatorSettings(read_limit=None, write_limit=None)
    return SimulatorSettings(rate_window=args.rate_window)


def _announce(sim: OECSimulator) -> None:
    print(f"export OEC_BASE_URL={sim.base_url}", flush=True)
    print(f"export OEC_API_KEY={sim.api_key}", flush=True)
    print(f"# read-only key: {sim.read_only_key}", flush=True)
    for project_id in sim.project_ids:
        print(f"# project {project_id} {sim.project(project_id).name}", flush=True)
        for env in sim.environments(project_id):
            print(f"# environment {env.id} {env.name} ({env.status})", flush=True)
    print("# ready", flush=True)


async def cmd_simulate(args: argparse.Namespace, out: Output) -> None:
    """Serve until stopped; the settings a client needs on stdout."""
    simulator = OECSimulator(
        seed=args.seed,
        environments=args.environments,
        projects=args.projects,
        port=args.port,
        dump_size=args.dump_size,
        settings=_settings(args),
    )
    # Process managers (docker stop, systemd, CI teardown) stop a server with SIGTERM:
    # stop cleanly then too, so the simulator's temp folder of generated dumps is removed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await simulator.start()  # on failure, it removes what it made
    except OSError as exc:
        busy = " (in use: give another --port, or 0 for any free one)"
        why = busy if exc.errno == errno.EADDRINUSE else ""
        raise ConfigurationError(
            f"--port {args.port}: cannot listen ({exc.strerror or exc}){why}"
        ) from None
    try:
        if args.fresh:
            taken = datetime.now(UTC) - timedelta(hours=1)
            for env_id in simulator.environment_ids:
                simulator.add_backup(env_id, backup_type="scheduled", created_at=taken)
        _announce(simulator)
        if out.chatty:
            print("simulator running; Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await simulator.stop()
    if out.chatty:
        print("simulator stopped", file=sys.stderr, flush=True)
