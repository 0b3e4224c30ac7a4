"""Waiting for an on-demand backup (API.md section 10): what to poll, and how often.

The platform's own client polls a task every 5 s for the first 30 s, then every 10 s,
and never spends more than a fifth of the key's read budget on it. Here the schedule is
expressed in the client's rate-limit period (a minute: 5 s = a twelfth of it, 30 s half
of it, 10 s a sixth), so that a test with a one-second window polls as a minute would,
sixty times faster; and every sleep is at least the fifth-of-budget interval per request
the last poll made, whatever interval is asked for.

What a poll reads: the backup's task (``GET /deployments/{task_id}``) while it runs,
which says the progress and the current step; the backup itself first (when only an id
was given), once the task has ended (for the backup's final state), and all along when
the backup has no task or its task cannot be read.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from oec_async.errors import (
    APIConnectionError,
    BackupFailedError,
    NotFoundError,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)
from oec_async.models import Backup, BackupProgress, Task, TaskStatus

__all__ = ["BUDGET_SHARE", "poll_interval", "watch"]

logger = logging.getLogger("oec_async.wait")

#: The most of the read budget a wait may spend.
BUDGET_SHARE = 0.2
_FAILED_TASK = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


def poll_interval(
    elapsed: float,
    *,
    period: float,
    per_request: float,
    requests: int,
    asked: float | None = None,
) -> float:
    """Seconds to sleep before the next poll.

    Args:
        elapsed: seconds since the wait began.
        period: the client's rate-limit period (60 s: a calendar minute).
        per_request: the least seconds per read that keeps within a fifth of the read
            budget (:meth:`Pacer.share_interval`).
        requests: how many reads the last poll made (1, or 2 when it read the task and
            the backup).
        asked: the caller's ``poll_interval``, which replaces the schedule.

    Returns:
        The schedule's interval (or ``asked``), but never less than ``requests`` times
        ``per_request``.
    """
    if asked is None:
        asked = period / 12 if elapsed < period / 2 else period / 6
    return max(asked, budget_floor(per_request, requests))


def budget_floor(per_request: float, requests: int) -> float:
    """The least seconds before the next poll after one that made ``requests`` reads,
    within the budget's share (see :func:`poll_interval`)."""
    return per_request * max(requests, 1)


class Poller(Protocol):
    """What a wait reads through (the client)."""

    async def get_backup(self, backup_id: uuid.UUID | str) -> Backup: ...

    async def get_task(self, task_id: str) -> Task: ...


#: A poll that failed after the transport's retries: the backup goes on on the platform,
#: and the next poll may get through.
_TRANSIENT = (APIConnectionError, ServerError, RateLimitError)


async def watch(
    client: Poller,
    backup: Backup | None,
    backup_id: uuid.UUID,
    *,
    give_up_after: float,
    interval: Callable[[float, int], float],
    least: Callable[[int], float],
) -> AsyncIterator[BackupProgress]:
    """Poll until the backup completes (the last state yielded), fails or
    ``give_up_after`` seconds pass; see :meth:`OECClient.watch_backup`.
    ``interval(elapsed, requests)`` is the sleep after a poll that made ``requests``
    reads, ``least(requests)`` the budget's floor under it. When the deadline comes
    before the next poll is due, one last poll is made at the deadline, unless it would
    come sooner than the floor allows."""
    started = time.monotonic()
    deadline = started + give_up_after
    task: Task | None = None
    follow_task = True  # poll the task while it runs; the backup once it has ended
    while True:
        requests = 0
        try:
            if backup is not None and follow_task and backup.task_id is not None:
                requests += 1
                try:
                    task = await client.get_task(backup.task_id)
                except NotFoundError:  # a purged task: the backup says the rest
                    task, follow_task = None, False
                else:
                    follow_task = not task.is_terminal
            if backup is None or not follow_task or backup.task_id is None:
                requests += 1
                backup = await client.get_backup(backup_id)
        except _TRANSIENT as exc:
            if isinstance(exc, RateLimitError) and exc.code == "ip_blocked":
                raise
            logger.warning("waiting for backup %s: a poll failed (%s); going on", backup_id, exc)
        else:
            yield BackupProgress(backup=backup, task=task, elapsed=time.monotonic() - started)
            if backup.is_completed:
                return
            if backup.has_failed or (task is not None and task.status in _FAILED_TASK):
                raise BackupFailedError(_failure(backup, task), backup=backup)
        now = time.monotonic()
        if now >= deadline:
            raise _timed_out(backup, backup_id, give_up_after)
        pause = interval(now - started, requests)
        if now + pause > deadline and deadline - now < least(requests):
            # A last poll at the deadline would spend more than the budget's share: the
            # wait ends there without it.
            await asyncio.sleep(deadline - now)
            raise _timed_out(backup, backup_id, give_up_after)
        await asyncio.sleep(min(pause, deadline - now))  # at the deadline: a last poll


def _timed_out(backup: Backup | None, backup_id: uuid.UUID, timeout: float) -> WaitTimeoutError:
    if backup is None:  # not one poll got through: nothing to report as last seen
        return WaitTimeoutError(
            f"backup {backup_id}: no poll answered within {timeout:g} s", backup=None
        )
    return WaitTimeoutError(
        f"backup {backup_id} still {backup.status} after {timeout:g} s (it goes on on the "
        "platform: wait again, or check it later)",
        backup=backup,
    )


def _failure(backup: Backup, task: Task | None) -> str:
    reason = backup.error_message or (task.error_message if task is not None else None)
    status = backup.status if backup.has_failed or task is None else f"task {task.status}"
    because = f": {reason}" if reason else ""
    return f"backup {backup.id} of environment {backup.environment_id} {status}{because}"
