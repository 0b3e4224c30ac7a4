"""Progress on stderr: live bars on a terminal, timestamped lines otherwise (cron mails,
CI logs), nothing with ``--quiet`` or ``--json``.

What every view shows: a first line saying what is happening before any byte moves
(:meth:`ProgressView.note`); each file's bytes, and its retries, restarts from zero,
verification and repairs; for a pull, the whole batch as environments done out of the
total known from the start (so the total never goes backwards, whatever the files still
to be discovered weigh); while a backup is being taken, its status, step and percent.
Sizes and speeds are in binary units (KiB, MiB/s) everywhere.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from oec_async.cli._render import format_size
from oec_async.download import BatchProgress, ProgressEvent
from oec_async.models import BackupProgress

__all__ = ["BarsView", "LinesView", "ProgressView", "QuietView", "make_progress_view"]

FileKey = tuple[uuid.UUID, str]
#: Files this large get a "verifying" line (a smaller one is checked in a blink: a line
#: for each would double a cron mail).
_VERIFYING_SAID_FROM = 64 * 1024 * 1024


def _short(value: uuid.UUID | None) -> str:
    return str(value)[:8] if value is not None else "-"


def _backup_state(state: BackupProgress) -> str:
    # While the task runs, the backup as last read still says "pending": the task's own
    # status says what is happening.
    task = state.task
    status = task.status if task is not None and task.status and not task.is_terminal else None
    percent = f" {state.percent:.0f}%" if state.percent is not None else ""
    step = f" {state.step}" if state.step else ""
    return f"{status or state.status}{percent}{step}"


class ProgressView(Protocol):
    """Where a command reports what is happening."""

    def note(self, text: str) -> None:
        """What is happening now (before the first byte, between phases)."""

    def on_file(self, event: ProgressEvent) -> None:
        """One step of one file's transfer."""

    def on_batch(self, snapshot: BatchProgress) -> None:
        """The whole pull, after any change."""

    def on_backup(self, state: BackupProgress) -> None:
        """A backup being taken, after each poll."""

    def close(self) -> None:
        """Stop drawing (always called, whatever ended the command)."""


class QuietView:
    """``--quiet`` and ``--json``: nothing at all."""

    def note(self, text: str) -> None:
        pass

    def on_file(self, event: ProgressEvent) -> None:
        pass

    def on_batch(self, snapshot: BatchProgress) -> None:
        pass

    def on_backup(self, state: BackupProgress) -> None:
        pass

    def close(self) -> None:
        pass


class LinesView:
    """Plain, greppable lines, one per event that matters (not per chunk); the batch's
    total at most every ``interval`` seconds, and when it ends."""

    def __init__(self, stream: TextIO, interval: float = 5.0) -> None:
        self.stream = stream
        self.interval = interval
        self._last_total = 0.0
        self._last_backup: str | None = None

    def _say(self, text: str) -> None:
        print(time.strftime("%H:%M:%S ") + text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._say(text)

    def on_file(self, event: ProgressEvent) -> None:
        name = f"{_short(event.environment_id)}/{_short(event.backup_id)} {event.artifact}"
        size = format_size(event.bytes_done)
        if event.kind == "start" and event.bytes_done == event.resumed_from:
            resumed = f", resuming at {size}" if event.bytes_done else ""
            self._say(f"{name}: started ({format_size(event.total)}{resumed})")
        elif event.kind == "restart":
            self._say(f"{name}: restarting from zero")
        elif event.kind == "retry":
            self._say(f"{name}: interrupted at {size}, retrying")
        elif event.kind == "verifying" and event.bytes_done >= _VERIFYING_SAID_FROM:
            self._say(f"{name}: verifying ({size})")
        elif event.kind == "repair":
            self._say(f"{name}: the copy on disk is damaged, repairing")
        elif event.kind == "done":
            self._say(f"{name}: done ({size})")
        elif event.kind == "skipped":
            self._say(f"{name}: already complete")

    def on_batch(self, snapshot: BatchProgress) -> None:
        now = time.monotonic()
        finished = snapshot.environments_done == snapshot.environments_total
        if not finished and now - self._last_total < self.interval:
            return
        self._last_total = now
        without = snapshot.environments_without_backup
        self._say(
            f"total: {snapshot.environments_done}/{snapshot.environments_total} environments"
            f" ({snapshot.environments_failed} failed"
            + (f", {without} without backup" if without else "")
            + f"), {format_size(snapshot.bytes_done)} on disk,"
            f" {format_size(int(snapshot.throughput))}/s"
        )

    def on_backup(self, state: BackupProgress) -> None:
        shown = _backup_state(state)
        if shown != self._last_backup:  # a line per change, not per poll
            self._last_backup = shown
            self._say(f"backup {_short(state.backup.id)}: {shown}")

    def close(self) -> None:
        pass


class _AmountColumn(ProgressColumn):
    """Bytes done of the total (binary units), or what the task says instead."""

    def render(self, task: Task) -> Text:
        shown = task.fields.get("amount")
        if shown is None:
            done = format_size(int(task.completed))
            shown = f"{done}/{format_size(int(task.total))}" if task.total else done
        return Text(str(shown), style="progress.download")


class _SpeedColumn(ProgressColumn):
    """Bytes a second in binary units (rich's own column counts in decimal MB)."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("speed", task.speed)
        return Text(f"{format_size(int(speed))}/s" if speed else "", style="progress.data.speed")


class _FileState:
    """What a file's bar says besides its bytes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.retries = 0
        self.restarted = False
        self.phase = ""

    def describe(self) -> str:
        notes = [self.phase] if self.phase else []
        if self.restarted:
            notes.append("[red]restarted from zero[/]")
        if self.retries:
            notes.append(f"[yellow]{self.retries} retr{'y' if self.retries == 1 else 'ies'}[/]")
        return self.label + (f" ({', '.join(notes)})" if notes else "")


class BarsView:
    """Live bars: a total, one per file in flight, and one for a backup being taken.

    For a pull (``batch=True``) the total counts environments (the whole batch is known
    from the start; bytes done and the speed are shown beside it), moving on within an
    environment as its bytes arrive, and never backwards. For one download it counts
    the bytes of its files.
    """

    def __init__(self, console: Console, *, batch: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=None),
            _AmountColumn(),
            _SpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self.batch = batch
        self.tasks: dict[FileKey, TaskID] = {}
        self.states: dict[FileKey, _FileState] = {}
        self.files: dict[FileKey, tuple[int, int | None]] = {}
        self.unfinished: dict[uuid.UUID, set[FileKey]] = {}
        self.total = self.progress.add_task("[bold]starting…", total=None)
        self._total_completed = 0.0
        self.backup_task: TaskID | None = None
        self.progress.start()

    def note(self, text: str) -> None:
        self.progress.update(self.total, description=f"[bold]{text}")

    def _file_task(self, key: FileKey, event: ProgressEvent) -> TaskID:
        task = self.tasks.get(key)
        if task is None:
            state = self.states[key] = _FileState(
                f"{_short(event.environment_id)} {event.artifact}"
            )
            task = self.tasks[key] = self.progress.add_task(state.describe(), total=event.total)
        return task

    def on_file(self, event: ProgressEvent) -> None:
        key = (event.backup_id, event.artifact)
        self.files[key] = (event.bytes_done, event.total)
        waiting = self.unfinished.setdefault(event.environment_id, set())
        if event.kind in ("done", "skipped"):
            waiting.discard(key)
            task = self.tasks.pop(key, None)
            self.states.pop(key, None)
            if task is not None:
                self.progress.remove_task(task)
        else:
            waiting.add(key)
            task = self._file_task(key, event)
            state = self.states[key]
            if event.kind == "retry":
                state.retries += 1
            elif event.kind == "restart":
                state.restarted = True
            state.phase = {"verifying": "verifying", "repair": "[yellow]repairing[/]"}.get(
                event.kind, "" if event.kind == "progress" else state.phase
            )
            self.progress.update(
                task, completed=event.bytes_done, total=event.total, description=state.describe()
            )
        if not self.batch:
            done = sum(d for d, _ in self.files.values())
            whole = sum(t or 0 for _, t in self.files.values())
            self.progress.update(self.total, completed=done, total=max(whole, done) or None)

    def _in_flight_fraction(self) -> float:
        # The manifest comes first and alone: counted, it would make an environment look
        # done before its dump has started. Its few bytes are left out.
        fraction = 0.0
        for keys in self.unfinished.values():
            sizes = [self.files[k] for k in keys if k[1] != "manifest"]
            whole = sum(t or 0 for _, t in sizes)
            if whole:
                fraction += min(1.0, sum(d for d, _ in sizes) / whole)
        return fraction

    def on_batch(self, snapshot: BatchProgress) -> None:
        total = snapshot.environments_total
        # Environments done, plus the in-flight ones' share of their bytes; held where
        # it was when a file restarts or a new file's size arrives (never backwards).
        moving = min(float(total), snapshot.environments_done + self._in_flight_fraction())
        self._total_completed = max(self._total_completed, moving)
        failed = snapshot.environments_failed
        without = snapshot.environments_without_backup
        label = (
            "[bold]total[/]"
            + (f" [red]{failed} failed[/]" if failed else "")
            + (f" [yellow]{without} without backup[/]" if without else "")
        )
        self.progress.update(
            self.total,
            description=label,
            completed=self._total_completed,
            total=total or None,
            amount=f"{snapshot.environments_done}/{total} envs, {format_size(snapshot.bytes_done)}",
            speed=snapshot.throughput,
        )

    def on_backup(self, state: BackupProgress) -> None:
        label = f"backup {_short(state.backup.id)}: {_backup_state(state)}"
        if self.backup_task is None:
            self.backup_task = self.progress.add_task(label, total=100)
        self.progress.update(
            self.backup_task,
            description=label,
            completed=state.percent or 0,
            amount=f"{state.elapsed:.0f}s",
            speed=0,
        )

    def close(self) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.progress.stop()


def make_progress_view(
    *, quiet: bool, batch: bool = False, stream: TextIO | None = None
) -> ProgressView:
    """Bars on a terminal, lines otherwise, nothing when ``quiet``."""
    stream = stream or sys.stderr
    if quiet:
        return QuietView()
    if stream.isatty():
        return BarsView(Console(file=stream), batch=batch)
    return LinesView(stream)
