"""Running one contender as a child process and measuring it: wall time, CPU time
(user + sys, the child and everything it waited for) and peak RSS.

A Python contender may also report what it measured itself, one line each on its output:
``VmHWM-KiB n`` (its own peak RSS, without the harness's pages copied by fork) and
``IN-PROCESS wall cpu`` (seconds spent in the work itself, interpreter started and
imports done).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

import attrs

__all__ = ["Measurement", "median", "run_measured"]


@attrs.frozen
class Measurement:
    wall: float
    cpu: float
    max_rss_kib: int
    returncode: int
    output: str
    in_process_wall: float | None = None
    in_process_cpu: float | None = None


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 1800,
) -> Measurement:
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    peak = _PeakRSS(process.pid)
    peak.start()
    output = process.stdout.read()  # the pipe closes when the tree exits
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    peak.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    del timeout
    text = output.decode(errors="replace")
    lines = text.splitlines()
    reported = [int(line.split()[1]) for line in lines if line.startswith("VmHWM-KiB ")]
    in_process = [line.split()[1:3] for line in lines if line.startswith("IN-PROCESS ")]
    return Measurement(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        # ru_maxrss would include the harness's own pages copied by fork before exec;
        # VmHWM of the new image (self-reported at exit, else polled) does not.
        max_rss_kib=reported[-1] if reported else peak.kib,
        returncode=process.returncode,
        output=text[-2000:],
        in_process_wall=float(in_process[-1][0]) if in_process else None,
        in_process_cpu=float(in_process[-1][1]) if in_process else None,
    )


class _PeakRSS(threading.Thread):
    """Polls a process and its descendants until stopped: the peak is the larger of the
    biggest single VmHWM and the biggest sum of VmRSS seen at once (a shell pipeline's
    processes are all alive together, so their memory adds up)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.kib = 0
        self._stop_event = threading.Event()

    def _tree(self, pid: int) -> list[int]:
        pids = [pid]
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    for child in handle.read().split():
                        pids.extend(self._tree(int(child)))
        except OSError:
            pass
        return pids

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            together = 0
            for pid in self._tree(self.pid):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        for line in handle:
                            if line.startswith("VmHWM:"):
                                self.kib = max(self.kib, int(line.split()[1]))
                            elif line.startswith("VmRSS:"):
                                together += int(line.split()[1])
                except OSError:
                    continue
            self.kib = max(self.kib, together)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
