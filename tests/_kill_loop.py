"""Downloads killed with SIGKILL at random moments, again and again, then finished.

After every kill, every file under a final name — in the work folder and in the complete
folder — must be byte-identical to the stored object, and a complete folder must hold the
whole backup. With a sizes-only manifest nothing but the downloader's own bookkeeping
stands between a crash and a wrong final file, so that is what this exercises. Used by a
short test in ``make test`` and by the soak.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import attrs

from oec_async.download._record import read_record
from oec_async.testing import OECSimulator

CHILD = Path(__file__).with_name("_child_download.py")
REPO_ROOT = Path(__file__).resolve().parent.parent


@attrs.define
class KillLoopReport:
    kills: int = 0
    checks: int = 0
    problems: list[str] = attrs.Factory(list)
    completed: bool = False


def check_final_files(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> list[str]:
    """What is wrong on disk: a final file that is not the stored object, or a complete
    folder that is not the whole backup."""
    backup = sim.backup(backup_id)
    env = dest / str(backup.environment_id)
    problems = []
    for folder in (env / str(backup_id), env / f"{backup_id}.part"):
        if not folder.is_dir():
            continue
        for artifact, name in backup.file_names.items():
            final = folder / name
            if (
                final.exists()
                and final.read_bytes() != sim.object(backup_id, artifact).path.read_bytes()
            ):
                problems.append(f"{final} differs from the stored {artifact}")
        if not folder.name.endswith(".part"):
            record = read_record(folder)
            if record is None:
                problems.append(f"{folder} has no complete record")
            elif not all((folder / f.name).is_file() for f in record.files.values() if f):
                problems.append(f"{folder} misses a file its record lists")
    return problems


async def _run_child(
    sim: OECSimulator, backup_id: uuid.UUID, dest: Path, options: dict[str, Any]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        sim.base_url,
        sim.api_key,
        str(backup_id),
        str(dest),
        json.dumps(options),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


async def _kill_mid_transfer(
    proc: asyncio.subprocess.Process, size: int, rng: random.Random
) -> bool:
    """Kill the child once the dump reaches a random offset between where this run
    started and the end (a fifth of the time, right at its first response: before or
    while a segmented file is preallocated). False if the child finished first."""
    assert proc.stdout is not None
    first = await proc.stdout.readline()
    if not first:
        return False
    start = int(first)
    target = start if rng.random() < 0.2 else start + int(rng.random() * (size - start))
    while int(first) < target:
        first = await proc.stdout.readline()
        if not first:
            return False
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
        return True
    return False


async def kill_loop(
    sim: OECSimulator,
    backup_id: uuid.UUID,
    dest: Path,
    *,
    options: dict[str, Any],
    kills: int,
    rng: random.Random,
) -> KillLoopReport:
    """Start the download in a child, kill it at a random moment of the dump's transfer,
    check the disk, and again, ``kills`` times; then let one run finish and check once
    more."""
    report = KillLoopReport()
    size = sim.object(backup_id, "database").size
    for attempt in range(kills + 1):
        proc = await _run_child(sim, backup_id, dest, options)
        last = attempt == kills
        try:
            async with asyncio.timeout(60):
                if not last and await _kill_mid_transfer(proc, size, rng):
                    report.kills += 1
                _, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
        if last:
            report.completed = proc.returncode == 0
            if not report.completed:
                report.problems.append(f"the last run failed: {err.decode()[-1500:]}")
        report.checks += 1
        report.problems += check_final_files(sim, dest, backup_id)
    return report
