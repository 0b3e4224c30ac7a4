"""What the progress views show, fed the downloader's own events: a pull's total that
knows the whole batch and never goes backwards, a download's total that moves, retries,
restarts, verification and repairs on the bars, binary units, a first line."""

from __future__ import annotations

import io
import re
import uuid

from rich.console import Console

from oec_async.cli._progress import BarsView, LinesView
from oec_async.download import BatchProgress, ProgressEvent
from oec_async.download.progress import EventKind

MiB = 1024 * 1024
ENVS = [uuid.UUID(int=n) for n in range(1, 5)]
BACKUPS = [uuid.UUID(int=100 + n) for n in range(1, 5)]


def event(
    n: int, artifact: str, done: int, total: int | None, kind: EventKind = "progress"
) -> ProgressEvent:
    return ProgressEvent(BACKUPS[n], ENVS[n], artifact, done, total, 0, kind)


def batch(done: int, *, total: int = 4, failed: int = 0, without: int = 0) -> BatchProgress:
    return BatchProgress(
        environments_total=total,
        environments_done=done,
        environments_failed=failed,
        environments_in_flight=1,
        bytes_done=0,
        bytes_total=0,
        bytes_transferred=3 * MiB,
        elapsed=1.0,
        environments_without_backup=without,
    )


def bars(*, batch_mode: bool) -> tuple[BarsView, io.StringIO]:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140, color_system=None)
    return BarsView(console, batch=batch_mode), screen


def total_of(view: BarsView) -> tuple[float, float | None]:
    task = next(t for t in view.progress.tasks if t.id == view.total)
    return task.completed, task.total


def descriptions(view: BarsView) -> list[str]:
    return [t.description for t in view.progress.tasks]


def test_a_pull_total_counts_environments_from_the_start_and_never_goes_back() -> None:
    view, _ = bars(batch_mode=True)
    view.note("pulling 4 environment(s)")
    seen = []

    def step(*events: ProgressEvent, done: int = 0) -> None:
        for e in events:
            view.on_file(e)
        view.on_batch(batch(done))
        seen.append(total_of(view))

    step(event(0, "manifest", 500, 500))  # the manifest alone: "done" with one file
    step(event(0, "database", 0, 10 * MiB, "start"))  # a big file's size arrives
    step(event(0, "database", 5 * MiB, 10 * MiB))
    step(event(0, "database", 0, 10 * MiB, "restart"))  # thrown away, from zero
    step(event(0, "database", 8 * MiB, 10 * MiB))
    step(event(0, "manifest", 500, 500, "done"), event(0, "database", 10 * MiB, 10 * MiB, "done"))
    step(done=1)
    view.close()

    completed = [c for c, _ in seen]
    assert completed == sorted(completed)  # never backwards
    assert {t for _, t in seen} == {4}  # the whole batch, from the first snapshot
    assert 0 < completed[2] < 1  # moves within an environment
    assert completed[-1] == 1


def test_file_bars_show_retries_restarts_verification_and_repairs() -> None:
    view, _ = bars(batch_mode=True)
    view.on_file(event(1, "database", 0, 4 * MiB, "start"))
    view.on_file(event(1, "database", MiB, 4 * MiB, "retry"))
    view.on_file(event(1, "database", MiB, 4 * MiB, "retry"))
    view.on_file(event(1, "database", 0, 4 * MiB, "restart"))
    view.on_file(event(1, "database", 4 * MiB, 4 * MiB, "verifying"))
    (label,) = [d for d in descriptions(view) if "database" in d]
    view.on_file(event(2, "filestore", 0, MiB, "repair"))
    repairing = [d for d in descriptions(view) if "filestore" in d]
    view.close()

    assert "verifying" in label
    assert "restarted from zero" in label
    assert "2 retries" in label
    assert "repairing" in repairing[0]


def test_speeds_and_sizes_are_binary_and_the_download_total_moves() -> None:
    view, screen = bars(batch_mode=False)
    view.on_file(event(0, "manifest", 500, 500, "start"))
    view.on_file(event(0, "database", 3 * MiB, 8 * MiB))
    moving = total_of(view)
    view.progress.refresh()
    view.close()

    assert moving == (3 * MiB + 500, 8 * MiB + 500)
    text = screen.getvalue()
    assert "MiB" in text
    assert not re.search(r"\d (k|M|G)B/s", text)  # rich's own speed column is decimal


def test_lines_say_what_happens_first_and_each_step_that_matters() -> None:
    stream = io.StringIO()
    view = LinesView(stream, interval=0)
    view.note("pulling 4 environment(s) into /srv/backups")
    view.on_file(event(0, "database", 0, 400 * MiB, "start"))
    view.on_file(event(0, "database", MiB, 400 * MiB))  # no line per chunk
    view.on_file(event(0, "database", MiB, 400 * MiB, "retry"))
    view.on_file(event(0, "database", 400 * MiB, 400 * MiB, "verifying"))
    view.on_file(event(0, "database", 400 * MiB, 400 * MiB, "done"))
    view.on_file(event(0, "manifest", 500, 500, "verifying"))  # small: said only when done
    view.on_file(event(1, "dump", 0, MiB, "repair"))
    view.on_batch(batch(4, failed=1, without=1))

    lines = [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines[0] == "pulling 4 environment(s) into /srv/backups"
    assert [line.split(": ", 1)[1] for line in lines[1:6]] == [
        "started (400.0 MiB)",
        "interrupted at 1.0 MiB, retrying",
        "verifying (400.0 MiB)",
        "done (400.0 MiB)",
        "the copy on disk is damaged, repairing",
    ]
    assert lines[-1].startswith("total: 4/4 environments (1 failed, 1 without backup)")
    assert lines[-1].endswith("3.0 MiB/s")
