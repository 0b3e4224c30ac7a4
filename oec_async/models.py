"""Typed, frozen models of what the API returns.

Read from JSON by the one converter in :mod:`oec_async._convert`. The platform adds
statuses and types without notice (``in_progress``, ``archived_cold``...), so enum-typed
fields are ``Enum | str``: a known value becomes the enum member, an unknown one stays a
plain string, and ``backup.status == BackupStatus.COMPLETED`` works either way.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from oec_async._redact import redact_url

__all__ = [
    "Backup",
    "BackupPage",
    "BackupProgress",
    "BackupStatus",
    "BackupType",
    "CursorPage",
    "DownloadURLs",
    "Environment",
    "EnvironmentStatus",
    "Pagination",
    "Project",
    "Task",
    "TaskStatus",
]

T = TypeVar("T")


class BackupStatus(enum.StrEnum):
    """Documented statuses, plus the ones seen in the wild."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in_progress"
    UPLOADING = "uploading"
    EXPIRED = "expired"


#: A backup that will never complete: what :meth:`OECClient.wait_for_backup` gives up on.
FAILED_BACKUP_STATUSES = frozenset(
    {BackupStatus.FAILED, BackupStatus.CANCELLED, BackupStatus.EXPIRED}
)


class BackupType(enum.StrEnum):
    """Documented backup types, plus the ones seen in the wild."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    PRE_DEPLOY = "pre_deploy"
    PRE_RESTORE = "pre_restore"
    PRE_UPGRADE = "pre_upgrade"
    PRE_DESTROY = "pre_destroy"


@attrs.frozen
class Backup:
    """One backup of an environment."""

    id: uuid.UUID
    environment_id: uuid.UUID
    status: BackupStatus | str
    backup_type: BackupType | str | None = None
    database_size: int | None = None
    filestore_size: int | None = None
    total_size: int | None = None
    compressed_size: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    expires_at: datetime | None = None
    is_verified: bool = False
    verified_at: datetime | None = None
    notes: str | None = None
    created_at: datetime | None = None
    error_message: str | None = None
    task_id: str | None = None
    retention_type: str | None = None
    environment_snapshot: dict[str, Any] | None = None

    @property
    def is_completed(self) -> bool:
        """Only completed backups can be downloaded."""
        return self.status == BackupStatus.COMPLETED

    @property
    def has_failed(self) -> bool:
        """Ended without a usable result (failed, cancelled or expired): never completes."""
        return self.status in FAILED_BACKUP_STATUSES


@attrs.frozen
class BackupPage:
    """One page of an environment's backups, newest first."""

    items: list[Backup]
    total: int
    page: int
    page_size: int
    total_pages: int

    @property
    def has_next(self) -> bool:
        """There is a page after this one."""
        return self.page < self.total_pages and len(self.items) > 0


def _url_repr(url: str | None) -> str:
    return repr(redact_url(url)) if url is not None else "None"


@attrs.frozen
class DownloadURLs:
    """Presigned URLs of a backup's three files; any of them may be ``None``.

    The URLs are bearer secrets until they expire: the repr shows only scheme, host and
    path. Read the attributes to use them, and never log them.
    """

    backup_id: uuid.UUID
    database_url: str | None = attrs.field(default=None, repr=_url_repr)
    filestore_url: str | None = attrs.field(default=None, repr=_url_repr)
    manifest_url: str | None = attrs.field(default=None, repr=_url_repr)
    expires_in: int | None = None
    expires_at: datetime | None = None
    use_streaming: bool = False

    def __str__(self) -> str:
        return repr(self)


# -- discovery (API.md section 8) ------------------------------------------------------------


class EnvironmentStatus(enum.StrEnum):
    """Documented environment statuses; an unknown one is kept as a plain string."""

    PENDING = "pending"
    CLONING = "cloning"
    DEPLOYING = "deploying"
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    ERROR = "error"


@attrs.frozen
class Project:
    """A project of the organisation: a repository and its environments.

    Any field but ``id`` may be missing or null. ``server_id`` is a UUID when it reads as
    one, else kept as the string the API sent.
    """

    id: uuid.UUID
    name: str | None = None
    odoo_version: str | None = None
    git_repo_url: str | None = None
    default_branch: str | None = None
    git_provider: str | None = None
    environment_count: int | None = None
    server_id: uuid.UUID | str | None = None
    created_at: datetime | None = None


@attrs.frozen
class Environment:
    """One environment (an Odoo instance) of a project. Any field but ``id`` may be
    missing or null; ``status`` is an :class:`EnvironmentStatus`, or the string the API
    sent when it is one this SDK does not know."""

    id: uuid.UUID
    name: str | None = None
    status: EnvironmentStatus | str | None = None
    url: str | None = None
    odoo_version: str | None = None
    branch: str | None = None
    last_commit: str | None = None
    cpu_cores: float | None = None
    ram_mb: int | None = None
    disk_gb: float | None = None
    project_id: uuid.UUID | None = None
    server_id: uuid.UUID | str | None = None
    custom_domain: str | None = None
    custom_domain_verified: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen
class Pagination:
    """The cursor half of a cursor envelope: is there more, and where it starts."""

    has_more: bool = False
    next_cursor: str | None = None
    total: int | None = None


@attrs.frozen
class CursorPage(Generic[T]):
    """One page of a cursor-paged listing (``GET /projects``):
    ``{"data": [...], "pagination": {"has_more", "next_cursor", "total"}}``."""

    data: list[T]
    pagination: Pagination = Pagination()


# -- on-demand backups (API.md section 10) ---------------------------------------------------


class TaskStatus(enum.StrEnum):
    """Statuses of a platform task (``GET /deployments/{task_id}``); unknown ones are kept
    as plain strings."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses after which a task never changes again.
TERMINAL_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


@attrs.frozen
class Task:
    """The platform task that runs an on-demand backup (or a deployment)."""

    id: str
    type: str | None = None
    status: TaskStatus | str | None = None
    environment_id: uuid.UUID | None = None
    progress_percent: float | None = None
    current_step: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None

    @property
    def is_terminal(self) -> bool:
        """The task has ended (completed, failed or cancelled)."""
        return self.status in TERMINAL_TASK_STATUSES


@attrs.frozen
class BackupProgress:
    """What :meth:`OECClient.watch_backup` saw at one poll of a backup being taken.

    ``task`` is None when the backup has no task, or its task could not be read;
    ``elapsed`` counts seconds since the wait began.
    """

    backup: Backup
    task: Task | None
    elapsed: float

    @property
    def status(self) -> BackupStatus | str:
        """The backup's status as last read: while its task runs, the task is polled
        instead (see :attr:`percent` and :attr:`step`), and the backup is read again once
        the task has ended."""
        return self.backup.status

    @property
    def percent(self) -> float | None:
        """The task's progress in percent, when the platform says."""
        return self.task.progress_percent if self.task is not None else None

    @property
    def step(self) -> str | None:
        """The task's current step (``"dumping database"``...), when the platform says."""
        return self.task.current_step if self.task is not None else None
