"""Downloading one backup, the happy path: bytes, layout, names, modes, re-runs."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oec_async import Backup, IntegrityError, OECClient
from oec_async.download import BackupDownload, ProgressEvent
from oec_async.download._layout import LOCK_NAME, RECORD_NAME, artifact_filenames
from oec_async.testing import OECSimulator
from tests._support import completed_backup, folder_of

ARTIFACTS = ("manifest", "database", "filestore")


def assert_bytes_match(sim: OECSimulator, result: BackupDownload) -> None:
    for artifact in ARTIFACTS:
        got = getattr(result, artifact)
        assert got is not None, artifact
        assert got.path.read_bytes() == sim.object(result.backup_id, artifact).path.read_bytes()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".part", ".part.json")))


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Modes must not depend on the caller's umask: prove it with the loosest one."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- the happy path ------------------------------------------------------------------------


async def test_download_writes_the_three_files_byte_for_byte_and_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)

    result = await client.download_backup(backup_id, tmp_path)

    assert_bytes_match(sim, result)
    assert result.verified
    assert not result.skipped
    assert [f.artifact for f in result.files] == list(ARTIFACTS)
    for downloaded in result.files:
        stored = sim.object(backup_id, downloaded.artifact)
        assert downloaded.verified, downloaded.artifact
        assert downloaded.sha256 == stored.sha256
        assert downloaded.size == stored.size == downloaded.path.stat().st_size
        assert downloaded.resumed_from == 0
        assert downloaded.bytes_transferred == stored.size
    assert result.bytes_transferred == result.size


async def test_download_lands_in_dest_env_backup_with_default_names(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)

    result = await client.download_backup(backup_id, tmp_path)

    directory = folder_of(sim, tmp_path, backup_id)
    assert result.directory == directory
    assert result.backup_id == backup_id
    assert result.environment_id == sim.backup(backup_id).environment_id
    assert result.database is not None
    assert result.filestore is not None
    assert result.manifest is not None
    assert result.database.path == directory / "dump.sql"
    assert result.filestore.path == directory / "filestore.tar.gz"
    assert result.manifest.path == directory / "manifest.json"
    assert [p.name for p in tmp_path.iterdir()] == [str(result.environment_id)]


async def test_created_folders_are_0700_and_files_0600_whatever_the_umask(
    sim: OECSimulator, client: OECClient, tmp_path: Path, permissive_umask: None
) -> None:
    backup_id = completed_backup(sim)
    dest = tmp_path / "not" / "yet"

    result = await client.download_backup(backup_id, dest)

    for folder in (tmp_path / "not", dest, dest / str(result.environment_id), result.directory):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    entries = list(result.directory.iterdir())
    assert {p.name for p in entries} >= {"dump.sql", "manifest.json", RECORD_NAME}
    for entry in entries:
        assert entry.is_file()
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600, entry.name


async def test_existing_dest_folder_keeps_its_mode(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    tmp_path.chmod(0o755)

    await client.download_backup(completed_backup(sim), tmp_path)

    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


async def test_download_leaves_no_partials_and_writes_the_completion_record(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)

    result = await client.download_backup(backup_id, tmp_path)

    assert leftovers(result.directory) == []
    assert not [p for p in result.directory.iterdir() if p.name.endswith(".tmp")]
    record = json.loads((result.directory / RECORD_NAME).read_text())
    assert record["backup_id"] == str(backup_id)
    assert record["environment_id"] == str(result.environment_id)
    assert {a: f["sha256"] for a, f in record["files"].items()} == {
        a: sim.object(backup_id, a).sha256 for a in ARTIFACTS
    }
    assert (result.directory / LOCK_NAME).exists()


@pytest.mark.parametrize("form", ["backup", "uuid", "str"])
async def test_download_accepts_a_backup_a_uuid_or_a_string_id(
    sim: OECSimulator, client: OECClient, tmp_path: Path, form: str
) -> None:
    backup_id = completed_backup(sim)
    target: Backup | uuid.UUID | str
    if form == "backup":
        target = await client.get_backup(backup_id)
    elif form == "uuid":
        target = backup_id
    else:
        target = str(backup_id).upper()

    result = await client.download_backup(target, tmp_path)

    assert result.backup_id == backup_id
    assert result.verified
    assert_bytes_match(sim, result)


async def test_a_backup_object_needs_no_extra_api_lookup(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup = await client.get_backup(completed_backup(sim))
    sim.reset_records()

    await client.download_backup(backup, tmp_path)

    assert [r.path.rsplit("/", 1)[-1] for r in sim.api_requests()] == ["download"]


# -- null URLs -----------------------------------------------------------------------------


async def test_backup_without_filestore_downloads_the_rest_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, has_filestore=False)

    result = await client.download_backup(backup_id, tmp_path)

    assert result.filestore is None
    assert result.verified
    assert result.database is not None
    assert result.database.verified
    assert not (result.directory / "filestore.tar.gz").exists()
    assert sim.storage_requests("filestore") == []


async def test_backup_without_manifest_is_downloaded_but_not_reported_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, has_manifest=False)

    result = await client.download_backup(backup_id, tmp_path)

    assert result.manifest is None
    assert not result.verified
    assert result.database is not None
    assert not result.database.verified
    assert result.filestore is not None
    assert not result.filestore.verified
    assert result.database.path.read_bytes() == sim.object(backup_id, "database").path.read_bytes()
    assert result.database.sha256 == sim.object(backup_id, "database").sha256


async def test_backup_without_database_url_downloads_the_rest(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, has_database=False)

    result = await client.download_backup(backup_id, tmp_path)

    assert result.database is None
    assert result.filestore is not None
    assert result.filestore.verified
    assert not (result.directory / "dump.sql").exists()


async def test_strict_without_manifest_refuses_and_keeps_only_the_partial(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    # the dump alone: it is the one to fail
    sim.update_backup(backup_id, has_manifest=False, has_filestore=False)
    directory = folder_of(sim, tmp_path, backup_id)

    with pytest.raises(IntegrityError, match="no manifest") as caught:
        await client.download_backup(backup_id, tmp_path, strict=True)

    assert caught.value.artifact == "database"
    assert not (directory / "dump.sql").exists()
    assert not (directory / RECORD_NAME).exists()
    part = directory / "dump.sql.part"
    assert part.read_bytes() == sim.object(backup_id, "database").path.read_bytes()


# -- file names ----------------------------------------------------------------------------


async def test_url_basename_is_used_when_it_is_a_safe_name(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(
        backup_id,
        file_names={
            "database": "odoo_prod_2026-05-22.sql",
            "filestore": "files+attachments.tar.gz",
        },
    )

    result = await client.download_backup(backup_id, tmp_path)

    assert result.database is not None

    assert result.filestore is not None
    assert result.database.path.name == "odoo_prod_2026-05-22.sql"
    assert result.filestore.path.name == "files+attachments.tar.gz"
    assert result.verified
    assert not (result.directory / "dump.sql").exists()
    assert result.database.path.read_bytes() == sim.object(backup_id, "database").path.read_bytes()


@pytest.mark.parametrize(
    "served_as",
    ["..dump.sql", ".hidden.sql", "dump.sql.part", "dump.sql.part.json", "my dump.sql", "x" * 201],
)
async def test_unsafe_url_basename_falls_back_to_the_default_name(
    sim: OECSimulator, client: OECClient, tmp_path: Path, served_as: str
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, file_names={"database": served_as})

    result = await client.download_backup(backup_id, tmp_path)

    assert result.database is not None
    assert result.database.path == result.directory / "dump.sql"
    assert result.database.path.read_bytes() == sim.object(backup_id, "database").path.read_bytes()
    assert result.verified
    assert sorted(p.name for p in result.directory.iterdir() if not p.name.startswith(".")) == [
        "dump.sql",
        "filestore.tar.gz",
        "manifest.json",
    ]


BASE = "https://storage.example/bucket/env/backup/"


@pytest.mark.parametrize(
    "url",
    [
        BASE + "..",
        BASE + "%2e%2e",
        BASE + "..%2F..%2Fetc%2Fpasswd",
        BASE + "evil%2F..%2F..%2Fx",
        BASE + "a%5Cb.sql",
        BASE + "dump.sql%00.txt",
        BASE,
        "https://storage.example",
        BASE + "%2Fetc%2Fpasswd",
        BASE + ".oec-download.json",
        BASE + ".oec-download.lock",
        BASE + "-rf",
        "http://[::1",
    ],
)
def test_artifact_filenames_refuse_unsafe_url_basenames(url: str) -> None:
    names = artifact_filenames({"database": url, "filestore": None, "manifest": None})

    assert names == {"database": "dump.sql"}


def test_artifact_filenames_take_the_last_segment_and_ignore_the_query() -> None:
    names = artifact_filenames(
        {
            "database": BASE + "prod%20copy/odoo_17.sql?X-Amz-Signature=abc&name=../x",
            "filestore": BASE + "fs.tar.gz#frag",
            "manifest": BASE + "meta.json",
        }
    )

    assert names == {"database": "odoo_17.sql", "filestore": "fs.tar.gz", "manifest": "meta.json"}


def test_artifact_filenames_never_give_two_artifacts_the_same_name() -> None:
    names = artifact_filenames(
        {
            "manifest": BASE + "dump.sql",
            "database": BASE + "dump.sql",
            "filestore": BASE + "dump.sql",
        }
    )

    assert len(set(names.values())) == 3
    assert names["manifest"] == "dump.sql"


# -- re-runs -------------------------------------------------------------------------------


async def test_rerun_of_a_complete_download_transfers_nothing_and_asks_for_no_url(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup = await client.get_backup(completed_backup(sim))
    first = await client.download_backup(backup, tmp_path)
    sim.reset_records()
    events: list[ProgressEvent] = []

    second = await client.download_backup(backup, tmp_path, progress=events.append)

    assert second.skipped
    assert second.bytes_transferred == 0
    assert sim.storage_requests() == []
    assert sim.api_requests("/download") == []
    assert second.verified
    assert [(f.path, f.sha256, f.size) for f in second.files] == [
        (f.path, f.sha256, f.size) for f in first.files
    ]
    assert {e.kind for e in events} == {"skipped"}
    assert sorted(e.artifact for e in events) == sorted(ARTIFACTS)


async def test_rerun_with_reverify_rehashes_and_still_transfers_nothing(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup = await client.get_backup(completed_backup(sim))
    await client.download_backup(backup, tmp_path)
    sim.reset_records()

    again = await client.download_backup(backup, tmp_path, reverify=True)

    assert again.skipped
    assert again.bytes_transferred == 0
    assert sim.storage_requests() == []
    assert again.verified


async def test_reverify_detects_a_silently_corrupted_file_and_downloads_it_again(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup = await client.get_backup(completed_backup(sim))
    first = await client.download_backup(backup, tmp_path)
    assert first.database is not None
    dump = first.database.path
    before = dump.stat()
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    os.utime(dump, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime
    sim.reset_records()

    repaired = await client.download_backup(backup, tmp_path, reverify=True)

    assert not repaired.skipped
    assert repaired.database is not None
    assert repaired.database.verified
    assert dump.read_bytes() == sim.object(backup.id, "database").path.read_bytes()
    assert [r.artifact for r in sim.storage_requests("database")] == ["database"]
    again = await client.download_backup(backup, tmp_path)
    assert again.skipped


async def test_a_final_file_changed_on_disk_is_not_trusted_by_the_record(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup = await client.get_backup(completed_backup(sim))
    first = await client.download_backup(backup, tmp_path)
    assert first.filestore is not None
    first.filestore.path.write_bytes(b"truncated")

    again = await client.download_backup(backup, tmp_path)

    assert not again.skipped
    assert again.filestore is not None
    assert again.filestore.verified
    assert again.filestore.path.read_bytes() == (
        sim.object(backup.id, "filestore").path.read_bytes()
    )


async def test_the_completion_record_keeps_the_backups_creation_time(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """The archive commands sort backups by when the platform took them: the record
    keeps that time, not only when the download finished."""
    backup = await client.get_backup(completed_backup(sim))
    result = await client.download_backup(backup, tmp_path)
    record = json.loads((result.directory / RECORD_NAME).read_text())
    assert backup.created_at is not None
    assert record["created_at"] == backup.created_at.isoformat()
    assert record["completed_at"] is not None
