"""Pulling the newest backup of many environments at once, each failure isolated.

Concurrency is bounded at two levels: ``concurrency`` environments in flight, and the
client's storage connector (``max_connections`` overall, ``max_connections_per_host``),
which every transfer of every environment shares. API calls of all environments go
through the client's one rate limiter. One free-space ledger covers the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

from oec_async._config import coerce_uuid
from oec_async.download._disk import SpaceLedger
from oec_async.download._source import BackupSource
from oec_async.download.backup import download_backup
from oec_async.download.options import DownloadOptions
from oec_async.download.progress import ProgressCallback, ProgressEvent
from oec_async.download.results import BatchProgress, PullResult
from oec_async.errors import ConfigurationError, InvalidResponseError, NoCompletedBackupError

__all__ = ["pull_latest"]

logger = logging.getLogger("oec_async.download")


class _BatchTracker:
    """The running totals of a bulk pull, told by each environment as it starts and ends,
    and by each file's progress events."""

    def __init__(
        self,
        total: int,
        per_file: ProgressCallback | None,
        listener: Callable[[BatchProgress], None] | None,
    ) -> None:
        self.total = total
        self.per_file = per_file
        self.listener = listener
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.without_backup = 0
        self.in_flight = 0
        self.files: dict[tuple[uuid.UUID, str], tuple[int, int | None]] = {}
        self.transferred = 0

    def on_event(self, event: ProgressEvent) -> None:
        key = (event.backup_id, event.artifact)
        previous, _ = self.files.get(key, (event.resumed_from, None))
        if event.kind == "progress" and event.bytes_done > previous:
            self.transferred += event.bytes_done - previous
        self.files[key] = (event.bytes_done, event.total)
        if self.per_file is not None:
            self.per_file(event)
        self.publish()

    def snapshot(self) -> BatchProgress:
        return BatchProgress(
            environments_total=self.total,
            environments_done=self.done,
            environments_failed=self.failed,
            environments_in_flight=self.in_flight,
            bytes_done=sum(done for done, _ in self.files.values()),
            bytes_total=sum(total or 0 for _, total in self.files.values()),
            bytes_transferred=self.transferred,
            elapsed=time.monotonic() - self.started,
            environments_without_backup=self.without_backup,
        )

    def started_one(self) -> None:
        self.in_flight += 1

    def finished_one(self, result: PullResult) -> None:
        self.in_flight -= 1
        self.done += 1
        if result.status == "no_backup":
            self.without_backup += 1
        elif result.status == "failed":
            self.failed += 1
        self.publish()

    def publish(self) -> None:
        if self.listener is not None:
            self.listener(self.snapshot())


def _unique_ids(env_ids: Iterable[Any]) -> list[uuid.UUID]:
    if isinstance(env_ids, str | bytes | uuid.UUID):
        raise ConfigurationError("env_ids must be an iterable of environment ids")
    unique: dict[uuid.UUID, None] = {}
    for value in env_ids:
        unique.setdefault(coerce_uuid(value, "environment id"), None)
    return list(unique)


async def pull_latest(
    source: BackupSource,
    env_ids: Iterable[uuid.UUID | str],
    dest: str | PathLike[str],
    *,
    concurrency: int = 4,
    progress: ProgressCallback | None = None,
    batch_progress: Callable[[BatchProgress], None] | None = None,
    options: DownloadOptions | None = None,
    **overrides: Any,
) -> list[PullResult]:
    """See :meth:`oec_async.OECClient.pull_latest`.

    Results come back in input order (duplicates pulled once, reported once). Errors of
    one environment are in its ``PullResult.error``; only cancellation (and bad arguments,
    refused before any request) propagate.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError("concurrency must be an integer >= 1")
    ids = _unique_ids(env_ids)
    opts = (options or DownloadOptions()).with_overrides(overrides)
    tracker = _BatchTracker(len(ids), progress, batch_progress)
    slots = asyncio.Semaphore(concurrency)
    ledger = SpaceLedger(opts.min_free_space)

    async def pull_one(env_id: uuid.UUID) -> PullResult:
        async with slots:
            tracker.started_one()
            result = await _pull_environment(source, env_id, dest, opts, ledger, tracker)
            tracker.finished_one(result)
            return result

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(pull_one(env_id)) for env_id in ids]
    return [task.result() for task in tasks]


async def _pull_environment(
    source: BackupSource,
    env_id: uuid.UUID,
    dest: str | PathLike[str],
    opts: DownloadOptions,
    ledger: SpaceLedger,
    tracker: _BatchTracker,
) -> PullResult:
    """One environment's newest completed backup, downloaded; its error recorded."""
    started = time.monotonic()
    backup_id: uuid.UUID | None = None
    try:
        backup = await source.latest_backup(env_id)
        if backup is None:
            raise NoCompletedBackupError(env_id)
        if backup.environment_id != env_id:  # the answer must be about the question
            raise InvalidResponseError(
                f"asked for environment {env_id}'s newest backup, the API answered "
                f"with a backup of environment {backup.environment_id}",
                status=200,
                method="GET",
                path=f"/environments/{env_id}/backups",
            )
        backup_id = backup.id
        download = await download_backup(
            source, backup, dest, progress=tracker.on_event, options=opts, ledger=ledger
        )
        return PullResult(env_id, backup_id, download, None, time.monotonic() - started)
    except Exception as exc:  # isolated: recorded, never raised
        if isinstance(exc, NoCompletedBackupError):
            logger.info("environment %s: %s", env_id, exc)
        else:
            logger.warning("environment %s: %s", env_id, exc)
        return PullResult(env_id, backup_id, None, exc, time.monotonic() - started)
