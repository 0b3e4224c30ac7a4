"""The Prometheus textfile and the JSON report: parseable by the real parser, replaced
atomically."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from oec_async.archive import (
    EnvironmentMetrics,
    RunMetrics,
    render_metrics,
    write_json_report,
    write_metrics,
)
from oec_async.archive._metrics import escape_label

START = datetime(2026, 5, 31, 2, 0, tzinfo=UTC)
GOOD, BAD = uuid.UUID(int=1), uuid.UUID(int=2)


def run(exit_status: int = 1) -> RunMetrics:
    return RunMetrics(
        started_at=START,
        finished_at=START + timedelta(seconds=95.5),
        exit_status=exit_status,
        environments=(
            EnvironmentMetrics(
                GOOD,
                ok=True,
                last_success=START + timedelta(seconds=90),
                backup_created=START - timedelta(hours=1),
                size=123_456,
                verified=True,
                duration=88.25,
                transferred=100_000,
            ),
            EnvironmentMetrics(BAD, ok=False, duration=3.0),
        ),
        pruned_folders=4,
        pruned_bytes=9_000,
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_metrics_parse_with_prometheus_own_parser() -> None:
    values = samples(render_metrics(run()))

    good = (("environment_id", str(GOOD)),)
    bad = (("environment_id", str(BAD)),)
    assert values[("oec_backups_last_success_timestamp_seconds", good)] == START.timestamp() + 90
    assert values[("oec_backups_backup_created_timestamp_seconds", good)] == (
        START.timestamp() - 3600
    )
    assert values[("oec_backups_backup_size_bytes", good)] == 123_456
    assert values[("oec_backups_backup_verified", good)] == 1
    assert values[("oec_backups_pull_success", good)] == 1
    assert values[("oec_backups_pull_success", bad)] == 0
    assert values[("oec_backups_pull_duration_seconds", good)] == 88.25
    assert values[("oec_backups_pull_transferred_bytes", good)] == 100_000
    assert ("oec_backups_last_success_timestamp_seconds", bad) not in values  # never succeeded
    assert values[("oec_backups_run_environments", (("result", "ok"),))] == 1
    assert values[("oec_backups_run_environments", (("result", "failed"),))] == 1
    assert values[("oec_backups_run_exit_status", ())] == 1
    assert values[("oec_backups_run_duration_seconds", ())] == 95.5
    assert values[("oec_backups_run_end_timestamp_seconds", ())] == START.timestamp() + 95.5
    assert values[("oec_backups_run_transferred_bytes", ())] == 100_000
    assert values[("oec_backups_run_pruned_folders", ())] == 4
    assert values[("oec_backups_run_pruned_bytes", ())] == 9_000


def test_every_metric_has_help_and_type_lines_before_its_samples() -> None:
    lines = render_metrics(run()).splitlines()

    names = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
    for name in names:
        assert name.startswith("oec_backups_")
        help_at = lines.index(next(line for line in lines if line.startswith(f"# HELP {name} ")))
        assert lines[help_at + 1] == f"# TYPE {name} gauge"
        first_sample = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(name + "{") or line.startswith(name + " ")
        )
        assert first_sample > help_at + 1


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "new\nline", 'all\\"\n'])
def test_label_values_are_escaped_so_the_parser_reads_them_back(value: str) -> None:
    text = f'oec_backups_x{{name="{escape_label(value)}"}} 1\n'

    [family] = text_string_to_metric_families(text)

    assert family.samples[0].labels == {"name": value}


def test_the_metrics_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "oec_backups.prom"
    write_metrics(path, run(exit_status=1))
    old_inode = path.stat().st_ino
    with path.open() as reader:  # an exporter in the middle of a scrape
        write_metrics(path, run(exit_status=0))
        old_text = reader.read()

    assert samples(old_text)[("oec_backups_run_exit_status", ())] == 1  # whole, not torn
    assert samples(path.read_text())[("oec_backups_run_exit_status", ())] == 0
    assert path.stat().st_ino != old_inode  # a new file renamed over, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oec_backups.prom"]  # no temp left
    umask = os.umask(0o022)
    os.umask(umask)
    # Created like any output file (0644 under the usual umask): the exporter can read it.
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_report_is_json_written_atomically_and_a_missing_folder_raises(
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.json"
    write_json_report(path, [{"environment_id": str(GOOD), "ok": True}])

    assert json.loads(path.read_text()) == [{"environment_id": str(GOOD), "ok": True}]
    with pytest.raises(FileNotFoundError):
        write_json_report(tmp_path / "missing" / "report.json", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
