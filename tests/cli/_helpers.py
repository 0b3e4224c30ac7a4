"""Helpers of the command-line tests: ``oec-backups`` run as a real subprocess
(``python -m oec_async``) against the simulator.

The simulator serves from the test's own event loop while the child runs, so every child
is started with ``asyncio.create_subprocess_exec`` and awaited, never waited on blocking.
Every run is checked for the two things that must never happen whatever the command: the
API key in the output, and a Python traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from oec_async.testing import OECSimulator

KiB = 1024
SUMMARY_HEADER = ("environment", "backup", "status", "size", "verified", "time", "error")
ANSI_ESCAPE = "\x1b["
TIMESTAMPED_LINE = re.compile(r"^\d\d:\d\d:\d\d \S")
# Variables that would make the child's output depend on who runs the tests.
_NOT_INHERITED = {
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
    "LINES",
}


@attrs.frozen
class Run:
    """One finished ``oec-backups`` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def results(self) -> list[dict[str, Any]]:
        """The ``results`` of a JSON document (download, pull, backup, list...)."""
        rows: list[dict[str, Any]] = self.json()["results"]
        return rows

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def __str__(self) -> str:  # what pytest shows when an assertion about a run fails
        return (
            f"oec-backups {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def child_env(tmp_dir: Path, **overrides: str) -> dict[str, str]:
    """The test's environment without OEC_* and colour switches, plus ``overrides``.

    TMPDIR points into the test's tmp folder, so nothing a child leaves behind outlives
    the test."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OEC_") and k not in _NOT_INHERITED
    }
    env["TMPDIR"] = str(tmp_dir)
    env.update(overrides)
    return env


async def run_cli(
    *args: str | Path, env: Mapping[str, str], timeout: float = 60.0, stdin: str | None = None
) -> Run:
    shown = tuple(str(a) for a in args)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oec_async",
        *shown,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), timeout
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Run(shown, process.returncode, stdout.decode(), stderr.decode())


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stderr, run
    assert "Traceback" not in run.stdout, run


class CLI:
    """Runs the command line against one simulator and checks every run for leaks."""

    def __init__(self, sim: OECSimulator, tmp_dir: Path) -> None:
        self.sim = sim
        self.tmp_dir = tmp_dir
        self.runs: list[Run] = []

    def env(self, **overrides: str) -> dict[str, str]:
        settings = {"OEC_API_KEY": self.sim.api_key, "OEC_BASE_URL": self.sim.base_url}
        return child_env(self.tmp_dir, **{**settings, **overrides})

    async def __call__(
        self, *args: str | Path | uuid.UUID, stdin: str | None = None, **env: str
    ) -> Run:
        run = await run_cli(*(str(a) for a in args), env=self.env(**env), stdin=stdin)
        self.runs.append(run)
        used = {self.sim.api_key, self.sim.read_only_key, env.get("OEC_API_KEY", "")}
        for key in filter(None, used):
            token = key.split("_", 3)[-1]  # oec_live_rw_<token>
            assert token not in run.stdout, run
            assert token not in run.stderr, run
        assert_no_traceback(run)
        return run


def has_summary_header(line: str) -> bool:
    return all(f" {word} " in line for word in SUMMARY_HEADER)


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


def assert_files_match_storage(sim: OECSimulator, directory: Path, backup_id: uuid.UUID) -> None:
    for artifact in ("database", "filestore", "manifest"):
        stored = sim.object(backup_id, artifact)
        assert (directory / stored.path.name).read_bytes() == stored.path.read_bytes()
