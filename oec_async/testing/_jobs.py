"""Backups taken on demand (API.md section 10), running in simulated time.

``POST /environments/{id}/backups`` starts a job: its backup is ``pending`` for
``backup_queue_seconds``, then ``in_progress`` for ``backup_run_seconds`` (the task's
``progress_percent`` rising through its steps), then ``completed`` — or ``failed`` /
``cancelled`` part-way when a ``faults.backup_fails`` rule said so at the start. Where a
job stands is a pure function of the simulated time (:func:`phase_of`); :meth:`Jobs.sync`
writes it into the world's backup whenever anyone looks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from oec_async.testing._entities import SimBackup, iso
from oec_async.testing._world import World, seeded_uuid

__all__ = [
    "TERMINAL_TASK_STATUSES",
    "BackupOrder",
    "Job",
    "Jobs",
    "Phase",
    "history_task_json",
    "phase_of",
]

Fate = Literal["completed", "failed", "cancelled"]
TERMINAL_TASK_STATUSES = frozenset({"completed", "failed", "cancelled"})


@attrs.frozen
class BackupOrder:
    """What a ``POST /environments/{id}/backups`` asked for (its JSON body, checked)."""

    backup_type: str = "manual"
    include_filestore: bool = True
    retention_type: str | None = None
    notes: str | None = None


@attrs.frozen
class Job:
    """One backup taken on demand, and its destiny (fixed when it starts)."""

    task_id: str
    backup_id: uuid.UUID
    environment_id: uuid.UUID
    created: float  # simulated Unix time
    queue_seconds: float
    run_seconds: float
    include_filestore: bool
    fate: Fate = "completed"
    end_fraction: float = 1.0  # of the run, where a failed/cancelled job ends
    error_message: str | None = None


@attrs.frozen
class Phase:
    """Where a job stands at one moment."""

    backup_status: str  # pending, in_progress, completed, failed, cancelled
    task_status: str  # pending, running, completed, failed, cancelled
    progress_percent: int
    current_step: str
    started: float | None
    finished: float | None
    error_message: str | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self.task_status in TERMINAL_TASK_STATUSES


def _step(percent: int, include_filestore: bool) -> str:
    if percent < 45:
        return "dumping database"
    if percent < 75:
        return "archiving filestore" if include_filestore else "compressing database"
    if percent < 95:
        return "uploading to storage"
    return "verifying"


def phase_of(job: Job, now: float) -> Phase:
    """Where ``job`` stands at simulated time ``now`` (a pure function)."""
    started = job.created + job.queue_seconds
    if now < started:
        return Phase("pending", "pending", 0, "queued", None, None)
    end = started + job.run_seconds * (job.end_fraction if job.fate != "completed" else 1.0)
    if now >= end:
        if job.fate == "completed":
            return Phase("completed", "completed", 100, "done", started, end)
        reached = int(100 * (end - started) / job.run_seconds) if job.run_seconds else 0
        step = _step(reached, job.include_filestore)
        return Phase(job.fate, job.fate, reached, step, started, end, job.error_message)
    percent = min(99, int(100 * (now - started) / job.run_seconds)) if job.run_seconds else 99
    step = _step(percent, job.include_filestore)
    return Phase("in_progress", "running", percent, step, started, None)


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class Jobs:
    """Every job, by task id; keeps each job's backup in the world true to its phase."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def start(
        self,
        world: World,
        env_id: uuid.UUID,
        order: BackupOrder,
        *,
        now: float,
        queue_seconds: float,
        run_seconds: float,
        fate: Fate = "completed",
        end_fraction: float = 1.0,
        error_message: str | None = None,
    ) -> SimBackup:
        """Start a backup of ``env_id``; returns it (``pending``)."""
        task_id = str(seeded_uuid(world.rng))
        backup = world.add_backup(
            env_id,
            status="pending",
            backup_type=order.backup_type,
            created_at=_dt(now),
            has_filestore=order.include_filestore,
            notes=order.notes,
            retention_type=order.retention_type,
            task_id=task_id,
            live=True,
        )
        self._jobs[task_id] = Job(
            task_id=task_id,
            backup_id=backup.id,
            environment_id=env_id,
            created=now,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            include_filestore=order.include_filestore,
            fate=fate,
            end_fraction=end_fraction,
            error_message=error_message,
        )
        return backup

    def get(self, task_id: str) -> Job | None:
        """The job with this task id, or None."""
        return self._jobs.get(task_id)

    def running_in(self, env_id: uuid.UUID, now: float) -> Job | None:
        """A job of this environment that has not ended, or None."""
        return next(
            (
                job
                for job in self._jobs.values()
                if job.environment_id == env_id and not phase_of(job, now).terminal
            ),
            None,
        )

    def sync(self, world: World, now: float) -> None:
        """Write each job's phase at ``now`` into its backup (status and times)."""
        for job in self._jobs.values():
            backup = world.backups.get(job.backup_id)
            if backup is None or not backup.live:
                continue  # a test took it over with update_backup
            phase = phase_of(job, now)
            updated = attrs.evolve(
                backup,
                status=phase.backup_status,
                started_at=_dt(phase.started),
                finished_at=_dt(phase.finished),
                error_message=phase.error_message,
            )
            if updated != backup:
                world.replace_backup(updated)

    def task_json(self, job: Job, now: float) -> dict[str, Any]:
        """``GET /deployments/{task_id}`` for a job."""
        phase = phase_of(job, now)
        return {
            "id": job.task_id,
            "type": "backup",
            "status": phase.task_status,
            "environment_id": str(job.environment_id),
            "progress_percent": phase.progress_percent,
            "current_step": phase.current_step,
            "started_at": iso(_dt(phase.started)),
            "completed_at": iso(_dt(phase.finished)),
            "error_message": phase.error_message,
        }


def history_task_json(backup: SimBackup) -> dict[str, Any]:
    """``GET /deployments/{task_id}`` for a seeded (historical) backup's task."""
    finished = backup.created_at
    return {
        "id": backup.shown_task_id,
        "type": "backup",
        "status": backup.status if backup.status in TERMINAL_TASK_STATUSES else "running",
        "environment_id": str(backup.environment_id),
        "progress_percent": 100 if backup.status == "completed" else 0,
        "current_step": "done" if backup.status in TERMINAL_TASK_STATUSES else "dumping database",
        "started_at": iso(backup.created_at),
        "completed_at": iso(finished) if backup.status in TERMINAL_TASK_STATUSES else None,
        "error_message": backup.error_message,
    }
