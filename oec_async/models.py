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
from typing import Any

import attrs

from oec_async._redact import redact_url

__all__ = ["Backup", "BackupPage", "BackupStatus", "BackupType", "DownloadURLs"]


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
