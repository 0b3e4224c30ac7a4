"""Monitoring a nightly pull: a Prometheus textfile and a JSON report, written atomically.

The metrics file is in the text exposition format that the node exporter's textfile
collector reads (``--collector.textfile.directory``): ``# HELP`` and ``# TYPE`` lines, one
sample per line, label values escaped. It is replaced atomically (temporary file in the
same folder, fsync, rename), so the exporter never scrapes half a file.

Per environment of the run (label ``environment_id``):

======================================================  ===================================
``oec_backups_last_success_timestamp_seconds``          when the environment's newest backup
                                                        was last on disk, verified: the end
                                                        of this run if it succeeded, else
                                                        when that backup's download ended
``oec_backups_backup_created_timestamp_seconds``        when the newest backup on disk was
                                                        taken (alert on this one: ``time() -
                                                        … > 26*3600``)
``oec_backups_backup_size_bytes``                       its size on disk
``oec_backups_backup_verified``                         1 if it matched the manifest's
                                                        checksums
``oec_backups_pull_success``                            1 if this run pulled it
``oec_backups_pull_duration_seconds``                   how long its pull took in this run
``oec_backups_pull_transferred_bytes``                  bytes received for it in this run
======================================================  ===================================

Per run: ``oec_backups_run_environments{result="ok"|"no_backup"|"failed"}`` (``no_backup``:
no completed backup to pull yet, not a failure),
``oec_backups_run_exit_status``, ``oec_backups_run_start_timestamp_seconds``,
``oec_backups_run_end_timestamp_seconds``, ``oec_backups_run_duration_seconds``,
``oec_backups_run_transferred_bytes``, ``oec_backups_run_pruned_folders``,
``oec_backups_run_pruned_bytes``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs

from oec_async._atomic import replace_file

__all__ = [
    "EnvironmentMetrics",
    "RunMetrics",
    "escape_label",
    "render_metrics",
    "write_json_report",
    "write_metrics",
]


@attrs.frozen
class EnvironmentMetrics:
    """What a run knows about one environment (None: no such sample is written)."""

    environment_id: uuid.UUID
    ok: bool
    last_success: datetime | None = None
    #: It has no completed backup yet (not ok, and not a failure of the pull either).
    no_backup: bool = False
    backup_created: datetime | None = None
    size: int | None = None
    verified: bool | None = None
    duration: float = 0.0
    transferred: int = 0


@attrs.frozen
class RunMetrics:
    """One run of ``pull``, for the metrics file."""

    started_at: datetime
    finished_at: datetime
    exit_status: int
    environments: tuple[EnvironmentMetrics, ...] = ()
    pruned_folders: int = 0
    pruned_bytes: int = 0


def escape_label(value: str) -> str:
    """A label value as the exposition format wants it: ``\\``, ``"`` and new lines
    escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(round(value, 3))


class _Family:
    def __init__(self, name: str, help_text: str) -> None:
        self.name = f"oec_backups_{name}"
        self.help = help_text
        self.samples: list[tuple[dict[str, str], float | bool]] = []

    def add(self, value: float | bool | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((labels, value))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            rendered = ",".join(f'{k}="{escape_label(v)}"' for k, v in sorted(labels.items()))
            lines.append(
                f"{self.name}{{{rendered}}} {_number(value)}"
                if rendered
                else f"{self.name} {_number(value)}"
            )
        return lines


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


_EnvValue = Callable[[EnvironmentMetrics], float | bool | None]


def render_metrics(run: RunMetrics) -> str:
    """The text exposition of ``run`` (families with no sample are left out)."""
    per_env: list[tuple[str, str, _EnvValue]] = [
        (
            "last_success_timestamp_seconds",
            "Unix time the environment's newest backup was last "
            "known on disk and verified by a pull.",
            lambda e: _seconds(e.last_success),
        ),
        (
            "backup_created_timestamp_seconds",
            "Unix time the newest backup on disk was taken by the platform.",
            lambda e: _seconds(e.backup_created),
        ),
        ("backup_size_bytes", "Size on disk of the newest backup.", lambda e: e.size),
        (
            "backup_verified",
            "1 if the newest backup matched the manifest's checksums.",
            lambda e: e.verified,
        ),
        ("pull_success", "1 if this run pulled the environment's newest backup.", lambda e: e.ok),
        (
            "pull_duration_seconds",
            "Seconds this run spent pulling the environment.",
            lambda e: e.duration,
        ),
        (
            "pull_transferred_bytes",
            "Bytes received for the environment in this run.",
            lambda e: e.transferred,
        ),
    ]
    families: list[_Family] = []
    for name, help_text, of_env in per_env:
        family = _Family(name, help_text)
        for env in run.environments:
            family.add(of_env(env), environment_id=str(env.environment_id))
        families.append(family)

    ok = sum(e.ok for e in run.environments)
    absent = sum(e.no_backup and not e.ok for e in run.environments)
    counts = _Family("run_environments", "Environments of the last run, by result.")
    counts.add(ok, result="ok")
    counts.add(absent, result="no_backup")
    counts.add(len(run.environments) - ok - absent, result="failed")
    families.append(counts)
    for name, help_text, value in (
        (
            "run_exit_status",
            "Exit status of the last run (0: everything succeeded).",
            run.exit_status,
        ),
        (
            "run_start_timestamp_seconds",
            "Unix time the last run started.",
            run.started_at.timestamp(),
        ),
        ("run_end_timestamp_seconds", "Unix time the last run ended.", run.finished_at.timestamp()),
        (
            "run_duration_seconds",
            "Seconds the last run took.",
            (run.finished_at - run.started_at).total_seconds(),
        ),
        (
            "run_transferred_bytes",
            "Bytes received by the last run.",
            sum(e.transferred for e in run.environments),
        ),
        ("run_pruned_folders", "Backup folders the last run's prune deleted.", run.pruned_folders),
        ("run_pruned_bytes", "Bytes the last run's prune freed.", run.pruned_bytes),
    ):
        family = _Family(name, help_text)
        family.add(value)
        families.append(family)
    lines = [line for family in families if family.samples for line in family.render()]
    return "\n".join(lines) + "\n"


def write_metrics(path: str | os.PathLike[str], run: RunMetrics) -> None:
    """Atomically replace ``path`` with the metrics of ``run``.

    Raises:
        OSError: the folder is missing or not writable (the old file is left as it was).
    """
    replace_file(path, render_metrics(run).encode())


def write_json_report(path: str | os.PathLike[str], report: Any | Sequence[Any]) -> None:
    """Atomically replace ``path`` with ``report`` as JSON (what ``--json`` prints).

    Raises:
        OSError: the folder is missing or not writable (the old file is left as it was).
    """
    replace_file(path, (json.dumps(report, indent=2, default=str) + "\n").encode())
