"""The *bulk-paced* scenario: a fleet pulled with default pacing against the simulator's
real rate limit (120 reads per key per window, 429 beyond), not with pacing off.

``oec-backups pull --all`` of 200 environments, as a user types it (discovery included,
the default pace of 100 reads a window), first with one key, then as 4 shards, each with
a key of its own (``--shard K/4 --requests-per-minute 100``, as docs/kubernetes.md says
for own keys). What it measures is environments a minute against the ceiling the API
allows: 120 reads a minute per key divided by the API calls each environment costs
(counted in the simulator's request log, discovery included).

The platform's window is a calendar minute; a full run of that would take about six
minutes, so the simulator's window and the client's (``--rate-window``) are shortened
together (``--paced-window``, 20 s by default) and every rate is scaled back to platform
minutes: an environment a window is an environment a platform minute. What does not
scale (process start, the transfers of small files) counts against oec_async.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from benchmarks._world import SimulatorThread

if TYPE_CHECKING:
    from benchmarks.run import Bench

__all__ = ["scenario_bulk_paced"]


def _shown(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0f} of {READ_LIMIT}"


KiB = 1024
READ_LIMIT = 120  # the platform's reads per key per window
SHARDS = 4


@attrs.frozen
class PacedRun:
    name: str
    keys: int
    wall: float  # seconds, for all the processes of the run
    reads: int  # API reads on the wire, discovery included
    rate_limited: int  # 429s
    environments: int
    window: float
    #: Reads per calendar window per key, between its first and its last window: the
    #: pace a long run keeps.
    sustained: float | None

    @property
    def reads_per_environment(self) -> float:
        return self.reads / self.environments

    @property
    def per_platform_minute(self) -> float:
        """Environments a platform minute (one window of the simulator)."""
        return self.environments * self.window / self.wall

    @property
    def ceiling(self) -> float:
        """What the keys allow: ``keys * 120 / reads per environment`` a minute."""
        return self.keys * READ_LIMIT / self.reads_per_environment


def _sustained(windows: dict[str, dict[int, int]]) -> float | None:
    """The median reads a calendar window per key over the windows that are neither a
    key's first nor its last (None when no key ran that long)."""
    middle = [
        count
        for counts in windows.values()
        for window, count in counts.items()
        if min(counts) < window < max(counts)
    ]
    return statistics.median(middle) if middle else None


async def _configure(sim: SimulatorThread, **settings: Any) -> None:
    sim.sim.configure(**settings)


async def _add_key(sim: SimulatorThread, name: str) -> str:
    return sim.sim.add_key("ro", name=name)


def _pull(bench: Bench, sim: SimulatorThread, dest: Path, runs: list[dict[str, str]]) -> float:
    """Start one ``pull --all`` per entry (its key, its extra arguments) at once; the
    wall time until the last one ends."""
    window = str(bench.args.paced_window)
    started = time.perf_counter()
    processes = []
    for extra in runs:
        env = bench.env(sim) | {"OEC_API_KEY": extra.pop("key")}
        command = [bench.python, "-m", "oec_async", "pull", "--all", "--dest", str(dest)]
        command += ["--mkdir", "--quiet", "--concurrency", "16", "--rate-window", window]
        command += [word for pair in extra.items() for word in pair]
        processes.append(subprocess.Popen(command, env=env))
    codes = [p.wait() for p in processes]
    wall = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"bulk-paced: pull exited {codes}")
    return wall


def _measure(
    bench: Bench, sim: SimulatorThread, name: str, runs: list[dict[str, str]], keys: list[str]
) -> PacedRun:
    dest = bench.work / f"paced-{len(runs)}"
    before = len(sim.sim.requests)
    wall = _pull(bench, sim, dest, runs)
    records = [r for r in sim.sim.requests[before:] if r.server == "api" and r.key_id in keys]
    windows: dict[str, dict[int, int]] = {}
    for record in records:
        if record.budget == "read" and record.key_id is not None:
            counts = windows.setdefault(record.key_id, {})
            counts[record.window] = counts.get(record.window, 0) + 1
    return PacedRun(
        name=name,
        keys=len(keys),
        wall=wall,
        reads=sum(r.budget == "read" for r in records),
        rate_limited=sum(r.status == 429 for r in records),
        environments=len(sim.env_ids),
        window=bench.args.paced_window,
        sustained=_sustained(windows),
    )


def scenario_bulk_paced(bench: Bench) -> None:
    """Run the scenario and add its section and its reported lines to ``bench``."""
    count, window = bench.args.paced_environments, bench.args.paced_window
    sim = SimulatorThread(
        bench.work / "paced-data", environments=count, dump_size=64 * KiB, filestore_size=16 * KiB
    )
    try:
        sim.call(_configure(sim, read_limit=READ_LIMIT, rate_window=float(window)))
        one = _measure(bench, sim, "one key", [{"key": sim.sim.api_key}], ["default-rw"])
        names = [f"shard-{k}" for k in range(SHARDS)]
        keys = [sim.call(_add_key(sim, name)) for name in names]
        shards = _measure(
            bench,
            sim,
            f"{SHARDS} shards, a key each",
            [
                {"key": key, "--shard": f"{k}/{SHARDS}", "--requests-per-minute": "100"}
                for k, key in enumerate(keys)
            ],
            names,
        )
    finally:
        sim.close()
    commands = {1: "`pull --all`", SHARDS: "`pull --all --shard K/4 --requests-per-minute 100`"}
    rows = [
        f"| {r.name}: {commands[r.keys]} | {r.keys} | {r.reads} | {r.reads_per_environment:.2f} "
        f"| {r.wall:.1f} s | {r.per_platform_minute:.1f} | {r.ceiling:.1f} "
        f"| {r.per_platform_minute / r.ceiling:.0%} | {_shown(r.sustained)} | {r.rate_limited} |"
        for r in (one, shards)
    ]
    bench.sections.append(
        f"## bulk-paced: {count} environments, default pacing, the rate limit on\n\n"
        f"The simulator answers 429 beyond {READ_LIMIT} reads per key per window, as the "
        f"platform does per minute. The window is shortened to {window:g} s (the client is "
        f"told with `--rate-window {window:g}`) and rates are scaled back: environments a "
        "platform minute = environments / wall x window. The ceiling is what the keys "
        f"allow: keys x {READ_LIMIT} reads a minute / API reads per environment (discovery "
        "included, from the request log). The default pace is 100 reads a window, a sixth "
        "under the limit: a long run keeps 83% of the ceiling at most (the *sustained* "
        "column: the median reads per calendar window per key, first and last windows "
        "left out). A run of a few windows does better than that, since each key's first "
        "window is spent at once; with `--all` every shard lists the projects again, so "
        "shards cost more reads per environment.\n\n"
        "| run | keys | API reads | reads/env | wall | env/min (platform) | ceiling env/min "
        "| of ceiling | sustained reads/window/key | 429s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )
    for run in (one, shards):
        bench.target(
            f"bulk-paced: {run.name}, environments a platform minute vs the API's ceiling",
            f"{run.per_platform_minute:.1f} vs {run.ceiling:.1f} "
            f"({run.per_platform_minute / run.ceiling:.0%}), sustained {_shown(run.sustained)} "
            f"reads a window per key, {run.rate_limited} 429s",
            None,
        )
