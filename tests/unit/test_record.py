"""The completion record read back from disk as hostile input: anything this package did
not write counts as no record (the folder is then not complete), never as a crash and
never as a path outside the folder."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from oec_async.download._folder import Folder
from oec_async.download._record import CompletionRecord, RecordedFile, load_record, read_record

BACKUP = uuid.UUID("0ed90475-0000-4000-8000-000000000001")
ENV = uuid.UUID("6513270e-0000-4000-8000-000000000002")


def written(tmp_path: Path) -> dict[str, Any]:
    record = CompletionRecord(
        BACKUP,
        ENV,
        {
            "manifest": RecordedFile("manifest.json", 10, "a" * 64, True, 1),
            "database": RecordedFile("dump.sql", 20, "b" * 64, True, 2),
            "filestore": None,
        },
    )
    with Folder(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), tmp_path) as folder:
        record.save(folder)
    data: dict[str, Any] = json.loads((tmp_path / ".oec-download.json").read_text())
    return data


def rewrite(tmp_path: Path, data: Any) -> None:
    (tmp_path / ".oec-download.json").write_text(json.dumps(data))


def test_a_record_round_trips(tmp_path: Path) -> None:
    written(tmp_path)
    record = read_record(tmp_path)
    assert record is not None
    assert record.complete
    assert record.files["database"] == RecordedFile("dump.sql", 20, "b" * 64, True, 2)
    assert record.files["filestore"] is None
    assert record.completed_at is not None


@pytest.mark.parametrize(
    "name",
    [
        "../../../outside/x",
        "/etc/passwd",
        "sub/dump.sql",
        "dump.sql.part",
        ".oec-download.json",
        "",
    ],
)
def test_a_record_naming_a_file_outside_the_folder_is_no_record(tmp_path: Path, name: str) -> None:
    data = written(tmp_path)
    data["files"]["database"]["name"] = name
    rewrite(tmp_path, data)
    assert read_record(tmp_path) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 1e400),
        ("size", "20"),
        ("size", -1),
        ("size", True),
        ("sha256", "zz"),
        ("verified", "yes"),
        ("mtime_ns", None),
    ],
)
def test_a_record_with_a_hostile_field_is_no_record(tmp_path: Path, field: str, value: Any) -> None:
    data = written(tmp_path)
    data["files"]["database"][field] = value
    rewrite(tmp_path, data)
    assert read_record(tmp_path) is None


def test_an_overflowing_size_in_raw_json_is_no_record(tmp_path: Path) -> None:
    written(tmp_path)
    path = tmp_path / ".oec-download.json"
    path.write_text(path.read_text().replace('"size": 20', '"size": 1e400'))
    assert read_record(tmp_path) is None


@pytest.mark.parametrize("shape", [[], "x", {"version": 1}, {"version": 1, "files": []}])
def test_records_of_the_wrong_shape_are_no_record(tmp_path: Path, shape: Any) -> None:
    rewrite(tmp_path, shape)
    assert read_record(tmp_path) is None


def test_two_artifacts_sharing_a_name_up_to_case_is_no_record(tmp_path: Path) -> None:
    data = written(tmp_path)
    data["files"]["database"]["name"] = "MANIFEST.json"
    rewrite(tmp_path, data)
    assert read_record(tmp_path) is None


def test_a_record_of_another_backup_is_not_loaded(tmp_path: Path) -> None:
    written(tmp_path)
    with Folder(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), tmp_path) as folder:
        assert load_record(folder, BACKUP) is not None
        assert load_record(folder, uuid.uuid4()) is None


def test_a_progress_record_is_not_a_complete_folder(tmp_path: Path) -> None:
    """Inside the work folder the record lists the files done so far: the archive
    commands must never take that for a complete backup."""
    data = written(tmp_path)
    data["complete"] = False
    rewrite(tmp_path, data)
    assert read_record(tmp_path) is None


def test_a_record_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    written(elsewhere)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / ".oec-download.json").symlink_to(elsewhere / ".oec-download.json")
    assert read_record(folder) is None
