"""Verification against the manifest: every manifest layout, corrupt and short bodies,
hostile manifests. Only a verified file ever gets its final name."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from oec_async import IntegrityError, ManifestError, OECClient
from oec_async.download import ProgressEvent
from oec_async.download._layout import RECORD_NAME
from oec_async.testing import MANIFEST_VARIANTS, OECSimulator
from tests._support import (
    assert_all_bytes_match,
    completed_backup,
    folder_of,
    interrupt_once_manifest_and_filestore_are_done,
    stored_bytes,
    work_folder_of,
)

HOSTILE_VARIANTS = ("traversal", "absolute", "invalid_json", "not_an_object")
GOOD_VARIANTS = tuple(v for v in MANIFEST_VARIANTS if v not in HOSTILE_VARIANTS)


def assert_nothing_of_the_dump_kept(directory: Path) -> None:
    """``directory`` is the work folder of a download that failed on the dump."""
    for name in ("dump.sql", "dump.sql.part", "dump.sql.part.json"):
        assert not (directory / name).exists(), name
    assert not directory.with_name(directory.name.removesuffix(".part")).exists()
    record = directory / RECORD_NAME
    if record.exists():  # the progress record: the files done so far, not the dump
        progress = json.loads(record.read_text())
        assert progress["complete"] is False
        assert "database" not in progress["files"]


def tamper_manifest(sim: OECSimulator, backup_id: uuid.UUID, old: bytes, new: bytes) -> None:
    """Edit the stored manifest in place, keeping its length (storage serves its size)."""
    assert len(old) == len(new)
    path = sim.object(backup_id, "manifest").path
    data = path.read_bytes()
    assert data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))


def test_variant_lists_cover_every_simulator_variant() -> None:
    assert set(GOOD_VARIANTS) | set(HOSTILE_VARIANTS) == set(MANIFEST_VARIANTS)
    assert len(GOOD_VARIANTS) == 10


# -- every manifest layout -----------------------------------------------------------------


@pytest.mark.parametrize("variant", GOOD_VARIANTS)
async def test_every_known_manifest_layout_verifies_the_download(
    sim: OECSimulator, client: OECClient, tmp_path: Path, variant: str
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, manifest_variant=variant)

    result = await client.download_backup(backup_id, tmp_path)

    assert_all_bytes_match(sim, result)
    assert result.database is not None
    assert result.filestore is not None
    assert result.manifest is not None
    assert result.manifest.verified
    assert result.database.path.name == "dump.sql"
    assert result.filestore.path.name == "filestore.tar.gz"
    assert result.database.sha256 == sim.object(backup_id, "database").sha256
    checked = variant != "no_checksums"
    assert result.database.verified is checked
    assert result.filestore.verified is checked
    assert result.verified is checked
    assert not list(result.directory.glob("*.part*"))


async def test_strict_refuses_a_manifest_without_checksums(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, manifest_variant="no_checksums", has_filestore=False)

    with pytest.raises(IntegrityError, match="no checksum"):
        await client.download_backup(backup_id, tmp_path, strict=True)

    assert not (work_folder_of(sim, tmp_path, backup_id) / "dump.sql").exists()


@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
async def test_hostile_manifest_is_refused_and_no_dump_gets_its_final_name(
    sim: OECSimulator, client: OECClient, tmp_path: Path, variant: str
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, manifest_variant=variant)
    directory = work_folder_of(sim, tmp_path, backup_id)

    with pytest.raises(ManifestError) as caught:
        await client.download_backup(backup_id, tmp_path)

    assert caught.value.artifact == "manifest"
    assert not folder_of(sim, tmp_path, backup_id).exists()
    assert not (directory / "dump.sql").exists()
    assert not (directory / "filestore.tar.gz").exists()
    assert not (directory / "manifest.json").exists()
    assert not (directory / "manifest.json.part").exists()  # a refused manifest is not kept
    assert not (directory / RECORD_NAME).exists()
    assert not list(tmp_path.rglob("*evil*"))
    assert not Path("/etc/evil.sql").exists()


async def test_manifest_of_another_backup_is_refused(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    other = str(uuid.UUID(int=backup_id.int ^ 1)).encode()
    tamper_manifest(
        sim, backup_id, f'"backup_id": "{backup_id}"'.encode(), b'"backup_id": "' + other + b'"'
    )

    with pytest.raises(ManifestError, match="another backup"):
        await client.download_backup(backup_id, tmp_path)

    assert not (work_folder_of(sim, tmp_path, backup_id) / "dump.sql").exists()


# -- corrupt bytes -------------------------------------------------------------------------


async def test_corrupt_byte_once_is_refetched_and_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    size = sim.object(backup_id, "database").size
    rule = sim.faults.corrupt(size // 2)
    events: list[ProgressEvent] = []

    result = await client.download_backup(backup_id, tmp_path, progress=events.append)

    assert rule.fired == 1
    assert [(r.range, r.status) for r in sim.storage_requests("database")] == [
        (None, 200),
        (None, 200),
    ]
    assert "restart" in [e.kind for e in events if e.artifact == "database"]
    assert result.database is not None
    assert result.database.verified
    assert result.database.bytes_transferred == 2 * size  # the bad copy counted too
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert result.verified


async def test_corrupt_on_every_fetch_raises_and_discards_the_bad_bytes(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.corrupt(1000, times=None)
    directory = work_folder_of(sim, tmp_path, backup_id)

    with pytest.raises(IntegrityError) as caught:
        await client.download_backup(backup_id, tmp_path)

    assert caught.value.artifact == "database"
    assert "sha256" in str(caught.value)
    assert len(sim.storage_requests("database")) == 2  # fetched once more from zero, no more
    assert_nothing_of_the_dump_kept(directory)


async def test_manifest_checksum_that_never_matches_raises_integrity_error(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    digest = sim.object(backup_id, "database").sha256
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    tamper_manifest(sim, backup_id, digest.encode(), wrong.encode())

    with pytest.raises(IntegrityError, match=wrong):
        await client.download_backup(backup_id, tmp_path)

    assert_nothing_of_the_dump_kept(work_folder_of(sim, tmp_path, backup_id))


# -- sizes ---------------------------------------------------------------------------------


async def test_short_body_with_honest_looking_headers_is_detected(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.faults.short_body(1, times=None)

    with pytest.raises(IntegrityError) as caught:
        await client.download_backup(backup_id, tmp_path)

    assert caught.value.artifact == "database"
    assert_nothing_of_the_dump_kept(work_folder_of(sim, tmp_path, backup_id))


async def test_short_body_once_is_refetched_and_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    rule = sim.faults.short_body(100, times=1)

    result = await client.download_backup(backup_id, tmp_path)

    assert rule.fired == 1
    assert len(sim.storage_requests("database")) == 2
    assert result.database is not None
    assert result.database.verified
    assert result.database.size == sim.object(backup_id, "database").size
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_storage_size_differing_from_the_manifest_raises_integrity_error(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    size = sim.object(backup_id, "database").size
    liar = size + 1 if len(str(size + 1)) == len(str(size)) else size - 1
    tamper_manifest(sim, backup_id, f'"size": {size},'.encode(), f'"size": {liar},'.encode())

    with pytest.raises(IntegrityError, match=str(liar)):
        await client.download_backup(backup_id, tmp_path)

    assert_nothing_of_the_dump_kept(work_folder_of(sim, tmp_path, backup_id))


async def test_files_verified_against_an_older_manifest_do_not_outlive_it(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """Found by the chaos soak: run 1 finished the manifest and filestore, not the dump;
    the backup was re-uploaded; run 2 replaced the manifest, then failed before the new
    filestore landed. The old filestore must not stay beside the new manifest."""
    backup_id = completed_backup(sim)
    folder = work_folder_of(sim, tmp_path, backup_id)
    await interrupt_once_manifest_and_filestore_are_done(
        sim, client, backup_id, tmp_path, dump_stalls_at=100
    )
    old_filestore = (folder / "filestore.tar.gz").read_bytes()

    sim.change_object(backup_id)  # a re-upload: new bytes, new manifest
    sim.faults.corrupt(10, artifact="database", times=None)  # run 2 cannot finish...
    sim.faults.stall_after(10, artifact="filestore", times=None)  # ...before the filestore
    try:
        with pytest.raises(IntegrityError):
            await client.download_backup(backup_id, tmp_path)
    finally:
        sim.faults.clear()

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["filestore"]["sha256"] == sim.object(backup_id, "filestore").sha256
    filestore = folder / "filestore.tar.gz"
    if filestore.exists():  # whatever is under the final name matches the manifest beside it
        digest = hashlib.sha256(filestore.read_bytes()).hexdigest()
        assert digest == manifest["files"]["filestore"]["sha256"]
    assert not filestore.exists() or filestore.read_bytes() != old_filestore
    assert not (folder / "dump.sql").exists()
