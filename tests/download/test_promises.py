"""The promises README and SECURITY.md make about files on disk, each tried the way an
attacker or an unlucky user would break it (issue "Make every promise true").

- a final name always means a complete, checked file, and a folder named after a backup
  always holds the whole backup;
- nothing is written (or truncated, or removed) outside ``dest/<env>/``, whatever
  symlinks are planted there;
- stale bytes are never mixed with new ones, and what an earlier run verified is not
  fetched again;
- bad options and hostile state on disk get a clear error, never a raw ``TypeError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from oec_async import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DownloadError,
    IntegrityError,
    InvalidResponseError,
    OECClient,
)
from oec_async.download import ProgressEvent
from oec_async.testing import OECSimulator
from tests._support import (
    completed_backup,
    flip_byte,
    folder_of,
    interrupt_once_manifest_and_filestore_are_done,
    stored_bytes,
    work_folder_of,
)

KiB = 1024
MiB = 1024 * KiB
SEGMENTED: dict[str, Any] = {
    "segments": 4,
    "segment_threshold": 1 * MiB,
    "min_segment_size": 256 * KiB,
    "buffer_size": 64 * KiB,
    "segment_probe": 0.0,
}


def outside_file(tmp_path: Path, name: str = "precious", content: bytes = b"precious\n") -> Path:
    target = tmp_path / "outside" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(content)
    return target


def environment_folder(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> Path:
    folder = dest / str(sim.backup(backup_id).environment_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


# -- 1. symlinks are never followed --------------------------------------------------------


async def test_symlinks_planted_at_working_names_are_never_written_through(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    dest = tmp_path / "dest"
    target = outside_file(tmp_path)
    env = environment_folder(sim, dest, backup_id)
    for folder in (env / str(backup_id), env / f"{backup_id}.part"):
        folder.mkdir(mode=0o700)
    planted = [
        env / f".{backup_id}.lock",
        env / f"{backup_id}" / ".oec-download.lock",  # where earlier versions locked
        env / f"{backup_id}.part" / ".oec-download.json.tmp",
        env / f"{backup_id}.part" / "dump.sql.part.json.tmp",
        env / f"{backup_id}.part" / "manifest.json.part",
        env / f"{backup_id}.part" / "filestore.tar.gz.part.json",
    ]
    for link in planted:
        link.symlink_to(target)

    result = await client.download_backup(backup_id, dest)

    assert target.read_bytes() == b"precious\n"
    assert result.verified
    for file in result.files:
        assert file.path.read_bytes() == stored_bytes(sim, backup_id, file.artifact)
        assert not file.path.is_symlink()


async def test_a_partial_that_is_a_symlink_with_a_sidecar_claiming_it_complete_is_not_trusted(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """A planted ``.part`` symlink to a file of the dump's size, with a sidecar naming the
    stored object: the downloader must neither truncate the target nor take its bytes."""
    backup_id = completed_backup(sim)
    stored = sim.object(backup_id, "database")
    dest = tmp_path / "dest"
    target = outside_file(tmp_path, content=b"\xee" * stored.size)
    env = environment_folder(sim, dest, backup_id)
    sidecar = {"etag": stored.etag, "last_modified": stored.last_modified_http, "size": stored.size}
    # Where earlier versions kept partials (sidecar format 1), and where they are now.
    for name, version in ((str(backup_id), 1), (f"{backup_id}.part", 2)):
        folder = env / name
        folder.mkdir(mode=0o700)
        (folder / "dump.sql.part").symlink_to(target)
        (folder / "dump.sql.part.json").write_text(
            json.dumps({"version": version, **sidecar, "segments": None})
        )

    result = await client.download_backup(backup_id, dest)

    assert target.read_bytes() == b"\xee" * stored.size
    assert result.database is not None
    assert result.database.path.read_bytes() == stored.path.read_bytes()


@pytest.mark.parametrize("which", ["complete", "work"])
async def test_a_backup_folder_that_is_a_symlink_is_refused(
    sim: OECSimulator, client: OECClient, tmp_path: Path, which: str
) -> None:
    backup_id = completed_backup(sim)
    dest = tmp_path / "dest"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = environment_folder(sim, dest, backup_id)
    name = str(backup_id) if which == "complete" else f"{backup_id}.part"
    (env / name).symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(DownloadError, match="symlink"):
        await client.download_backup(backup_id, dest)

    assert list(elsewhere.iterdir()) == []


async def test_a_backup_folder_writable_by_others_is_refused(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    env = environment_folder(sim, tmp_path, backup_id)
    open_folder = env / str(backup_id)
    open_folder.mkdir()
    open_folder.chmod(0o777)

    with pytest.raises(DownloadError, match="writable by group or others"):
        await client.download_backup(backup_id, tmp_path)

    assert list(open_folder.iterdir()) == []


# -- 2. a crash between preallocation and its record ---------------------------------------


async def test_a_preallocated_partial_of_zeros_never_gets_a_final_name_with_sizes_only_manifest(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    """The state a kill -9 right after the preallocation used to leave: a full-length file
    of zeros described by a whole-file sidecar. It must not be taken for a complete
    partial (it was, and with a sizes-only manifest ``dump.sql`` got its final name)."""
    backup_id = seg_sim.latest_completed(seg_sim.environment_ids[0]).id
    seg_sim.update_backup(backup_id, manifest_variant="no_checksums")
    stored = seg_sim.object(backup_id, "database")
    env = environment_folder(seg_sim, tmp_path, backup_id)
    sidecar = {"etag": stored.etag, "last_modified": stored.last_modified_http, "size": stored.size}
    for name in (str(backup_id), f"{backup_id}.part"):
        folder = env / name
        folder.mkdir(mode=0o700)
        (folder / "dump.sql.part").write_bytes(b"\0" * stored.size)
        (folder / "dump.sql.part.json").write_text(
            json.dumps({"version": 1, **sidecar, "segments": None})
        )

    result = await seg_client.download_backup(backup_id, tmp_path, **SEGMENTED)

    assert result.database is not None
    assert result.database.path.read_bytes() == stored.path.read_bytes()


async def test_the_sidecar_of_a_segmented_file_is_written_before_it_is_preallocated(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    """Whenever a full-length ``.part`` exists, its sidecar already describes ranges."""
    backup_id = seg_sim.latest_completed(seg_sim.environment_ids[0]).id
    size = seg_sim.object(backup_id, "database").size
    seg_sim.faults.stall_after(64 * KiB, times=None)  # every range stalls at once
    work = work_folder_of(seg_sim, tmp_path, backup_id)
    task = asyncio.create_task(
        seg_client.download_backup(backup_id, tmp_path, **{**SEGMENTED, "retries": 0})
    )
    try:
        part = work / "dump.sql.part"
        async with asyncio.timeout(10):
            while not (part.exists() and part.stat().st_size == size):
                await asyncio.sleep(0.001)
        sidecar = json.loads((work / "dump.sql.part.json").read_text())
        assert sidecar["segments"] is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        seg_sim.faults.release_stalls()


# -- 3. names --------------------------------------------------------------------------------


async def test_a_url_named_like_another_artifacts_working_file_cannot_clobber_it(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, file_names={"filestore": "dump.sql.part.json.tmp"})
    sim.faults.corrupt(100, artifact="database", times=1)  # one bad fetch of the dump

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    assert result.filestore is not None
    assert result.filestore.path.name == "filestore.tar.gz"
    assert result.filestore.path.read_bytes() == stored_bytes(sim, backup_id, "filestore")
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_names_that_differ_only_in_case_are_not_distinct(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """``Dump.sql`` and ``dump.SQL`` are one file on macOS and Windows file systems."""
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, file_names={"database": "Backup.SQL", "filestore": "backup.sql"})

    result = await client.download_backup(backup_id, tmp_path)

    names = [f.path.name.casefold() for f in result.files]
    assert len(set(names)) == len(names)
    assert result.verified


# -- 6. what is read back from disk is hostile input ----------------------------------------


async def test_a_record_naming_a_file_outside_the_folder_is_never_reported_or_removed(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    dest = tmp_path / "dest"
    result = await client.download_backup(backup_id, dest)
    victim = outside_file(tmp_path, "x", b"not yours\n")
    record_path = result.directory / ".oec-download.json"
    record = json.loads(record_path.read_text())
    info = victim.stat()
    record["files"]["database"].update(
        name="../../../outside/x", size=info.st_size, mtime_ns=info.st_mtime_ns
    )
    record_path.write_text(json.dumps(record))

    again = await client.download_backup(backup_id, dest, reverify=True)

    assert victim.read_bytes() == b"not yours\n"
    for file in again.files:
        assert file.path.resolve().is_relative_to(dest.resolve())
        assert file.path.read_bytes() == stored_bytes(sim, backup_id, file.artifact)


async def test_a_record_with_an_absurd_size_is_no_record_not_a_crash(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    result = await client.download_backup(backup_id, tmp_path)
    assert result.database is not None
    record_path = result.directory / ".oec-download.json"
    text = record_path.read_text()
    record_path.write_text(text.replace(f'"size": {result.database.size}', '"size": 1e400', 1))

    again = await client.download_backup(backup_id, tmp_path)

    assert again.verified
    assert again.database is not None
    assert again.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_a_sidecar_with_mixed_type_segments_restarts_the_file_not_a_crash(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    stored = sim.object(backup_id, "database")
    env = environment_folder(sim, tmp_path, backup_id)
    segments = [[0, 10, 5], ["a", 20, 15], [20, stored.size, 20]]
    for name, version in ((str(backup_id), 1), (f"{backup_id}.part", 2)):
        folder = env / name
        folder.mkdir(mode=0o700)
        (folder / "dump.sql.part").write_bytes(b"\0" * stored.size)
        (folder / "dump.sql.part.json").write_text(
            json.dumps(
                {
                    "version": version,
                    "etag": stored.etag,
                    "last_modified": None,
                    "size": stored.size,
                    "segments": segments,
                }
            )
        )

    result = await client.download_backup(backup_id, tmp_path)

    assert result.database is not None
    assert result.database.path.read_bytes() == stored.path.read_bytes()


# -- 7. the API's answer must be about the question ----------------------------------------


async def test_a_backup_of_another_environment_in_a_listing_is_not_pulled_as_this_one(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    asked, other = sim.environment_ids[:2]
    stranger = sim.latest_completed(other).to_json()
    page = {"items": [stranger], "total": 1, "page": 1, "page_size": 1, "total_pages": 1}
    sim.faults.api_raw(  # the listing answers with another environment's backup
        json.dumps(page).encode(), path_contains=f"/environments/{asked}/backups"
    )

    (result,) = await client.pull_latest([asked], tmp_path)

    assert not result.ok
    assert isinstance(result.error, InvalidResponseError)
    assert not (tmp_path / str(other)).exists()


async def test_a_backup_answer_for_another_id_is_refused(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    asked = completed_backup(sim)
    other = sim.latest_completed(sim.environment_ids[1]).to_json(detail=True)
    sim.faults.api_raw(  # GET /backups/{asked} answers with another backup
        json.dumps(other).encode(), path_contains=f"/backups/{asked}"
    )

    with pytest.raises(InvalidResponseError):
        await client.download_backup(asked, tmp_path)

    assert list(tmp_path.iterdir()) == []


# -- 10. option types are checked before anything is sent -----------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"lock_timeout": "5"},
        {"retries": "3"},
        {"buffer_size": "1MB"},
        {"min_free_space": None},
        {"segments": 2.5},
        {"strict": "no"},
        {"reverify": 1},
        {"segment_probe": float("nan")},
        {"expires_in": "3600"},
    ],
)
async def test_a_download_option_of_the_wrong_type_is_a_clear_error_before_any_request(
    sim: OECSimulator, client: OECClient, tmp_path: Path, options: dict[str, Any]
) -> None:
    backup_id = completed_backup(sim)
    sim.reset_records()

    with pytest.raises(ConfigurationError, match=next(iter(options))):
        await client.download_backup(backup_id, tmp_path, **options)

    assert sim.requests == []
    assert list(tmp_path.iterdir()) == []


# -- 11. what an interrupted run verified is kept -------------------------------------------


async def test_an_interrupted_download_keeps_the_files_it_had_verified(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    await interrupt_once_manifest_and_filestore_are_done(
        sim, client, backup_id, tmp_path, dump_stalls_at=10 * KiB
    )
    sim.reset_records()

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    assert sim.storage_requests("filestore") == []
    assert result.filestore is not None
    assert result.filestore.bytes_transferred == 0
    assert result.filestore.evidence == "record"
    assert result.filestore.path.read_bytes() == stored_bytes(sim, backup_id, "filestore")


async def test_touching_one_final_file_rechecks_only_that_file_without_fetching_it(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    first = await client.download_backup(backup_id, tmp_path)
    assert first.filestore is not None
    os.utime(first.filestore.path)  # same bytes, new modification time
    sim.reset_records()

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    assert [r.artifact for r in sim.storage_requests()] == ["manifest"]
    assert result.filestore is not None
    assert result.filestore.evidence == "rehashed"
    assert result.database is not None
    assert result.database.evidence == "record"
    assert result.bytes_transferred == sim.object(backup_id, "manifest").size


async def test_deleting_one_final_file_fetches_only_that_file_again(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    first = await client.download_backup(backup_id, tmp_path)
    assert first.filestore is not None
    first.filestore.path.unlink()
    sim.reset_records()

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    assert sorted(r.artifact or "" for r in sim.storage_requests()) == ["filestore", "manifest"]
    assert result.filestore is not None
    assert result.filestore.path.read_bytes() == stored_bytes(sim, backup_id, "filestore")
    assert result.repaired == (f"{first.filestore.path.name} is missing",)


# -- 12. strict holds for a backup already on disk -----------------------------------------


async def test_strict_refuses_an_unverified_backup_already_on_disk(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, manifest_variant="no_checksums")
    first = await client.download_backup(backup_id, tmp_path)
    assert not first.verified

    with pytest.raises(IntegrityError, match="strict"):
        await client.download_backup(backup_id, tmp_path, strict=True)


# -- 14. a folder named after a backup always holds the whole backup -------------------------


async def test_a_backup_that_cannot_be_downloaded_leaves_no_folder(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    env = sim.environment_ids[0]
    failed = next(b for b in sim.backups(env) if b.status == "failed")

    with pytest.raises(BadRequestError):
        await client.download_backup(failed.id, tmp_path)

    assert list(tmp_path.iterdir()) == []


async def test_a_failed_download_leaves_no_folder_under_the_backups_name(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """A restore script that picks the newest backup folder must never pick a backup
    without its dump: the verified manifest and filestore wait in the work folder."""
    backup_id = completed_backup(sim)
    sim.faults.corrupt(100, artifact="database", times=None)
    # The dump's first fetch waits (past its corrupt byte) until the filestore is done, so
    # that the failure comes after a file was verified, whatever the machine's load.
    sim.faults.stall_after(1000, artifact="database")

    def release_once_the_filestore_is_done(event: ProgressEvent) -> None:
        if event.artifact == "filestore" and event.kind == "done":
            sim.faults.release_stalls()

    with pytest.raises(IntegrityError):
        await client.download_backup(
            backup_id, tmp_path, progress=release_once_the_filestore_is_done
        )

    assert not folder_of(sim, tmp_path, backup_id).exists()
    work = work_folder_of(sim, tmp_path, backup_id)
    assert (work / "filestore.tar.gz").read_bytes() == stored_bytes(sim, backup_id, "filestore")


# -- 15. a repair says so, and a claim from the record says where it comes from ------------


async def test_reverify_reports_what_it_repairs(
    sim: OECSimulator, client: OECClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backup_id = completed_backup(sim)
    first = await client.download_backup(backup_id, tmp_path)
    assert first.database is not None
    flip_byte(first.database.path, 100, keep_time=True)  # size and time as they were
    events: list[ProgressEvent] = []

    result = await client.download_backup(
        backup_id, tmp_path, reverify=True, progress=events.append
    )

    assert result.repaired == ("dump.sql no longer matches its recorded SHA-256",)
    assert [e.artifact for e in events if e.kind == "repair"] == ["database"]  # only it
    assert any(
        r.levelno == logging.WARNING and "no longer matches" in r.getMessage()
        for r in caplog.records
    )
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_a_verified_claim_taken_from_the_record_says_so(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = completed_backup(sim)
    await client.download_backup(backup_id, tmp_path)

    again = await client.download_backup(backup_id, tmp_path)
    rehashed = await client.download_backup(backup_id, tmp_path, reverify=True)

    assert again.skipped
    assert {f.evidence for f in again.files} == {"record"}
    assert {f.evidence for f in rehashed.files} == {"rehashed"}


# -- 16. one retry engine for a stream and for each range ----------------------------------


async def test_a_range_that_keeps_progressing_survives_more_url_expiries_than_the_budget(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    """Renewals are counted per run of bad luck: progress between them resets the count,
    for a range exactly as for a single stream."""
    backup_id = seg_sim.latest_completed(seg_sim.environment_ids[0]).id
    piece = 2 * SEGMENTED["min_segment_size"]  # the first range is the file's first piece
    for offset in (100 * KiB, 180 * KiB, 260 * KiB, 340 * KiB, 420 * KiB):
        assert offset < piece
        seg_sim.faults.expire_after(offset)  # all inside the first range: one stream
    events: list[ProgressEvent] = []

    result = await seg_client.download_backup(
        backup_id, tmp_path, progress=events.append, **SEGMENTED
    )

    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(seg_sim, backup_id, "database")
    assert seg_sim.expired_refusals >= 5  # one stream renewed 5 times (other ranges may add)
    assert any(e.artifact == "database" and e.kind == "retry" for e in events)


# -- 17. a stalled range does not hide the others' progress --------------------------------


async def test_segment_progress_is_on_record_once_every_range_has_stalled(
    seg_sim: OECSimulator, seg_client: OECClient, tmp_path: Path
) -> None:
    """Every range receives a little, then stalls, all within half a second: what reached
    the disk must be on record (a kill -9 now would otherwise lose every range's bytes),
    although no range advances any more."""
    backup_id = seg_sim.latest_completed(seg_sim.environment_ids[0]).id
    piece = 2 * SEGMENTED["min_segment_size"]  # ranges are handed out piece by piece
    for start in range(0, 4 * MiB, piece):
        seg_sim.faults.stall_after(start + 100 * KiB, times=None)
    work = work_folder_of(seg_sim, tmp_path, backup_id)
    task = asyncio.create_task(seg_client.download_backup(backup_id, tmp_path, **SEGMENTED))
    try:
        await asyncio.wait_for(seg_sim.wait_for_bytes(backup_id, "database", 4 * 100 * KiB), 10)
        async with asyncio.timeout(5):
            while True:  # every range wrote a 64 KiB buffer before it stalled
                sidecar = json.loads((work / "dump.sql.part.json").read_text())
                ranges = sidecar["segments"] or []
                if sum(1 for s, _, p in ranges if p - s >= 64 * KiB) >= 4:
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        seg_sim.faults.release_stalls()


# -- 4. without a validator, only a checksum may vouch for a continued file ---------------


async def test_storage_without_validators_never_splices_a_changed_object_into_a_partial(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    """No ETag, no Last-Modified and a sizes-only manifest: nothing could tell old head +
    new tail from the object, so an interrupted file starts again from zero."""
    sim.configure(storage_validators=False)
    backup_id = completed_backup(sim)
    # No filestore: a changed object gets a filestore of another size, and whether that
    # one was fetched before or after the change would be a race of its own.
    sim.update_backup(backup_id, manifest_variant="no_checksums", has_filestore=False)
    sim.faults.drop_after(100 * KiB, artifact="database")
    changed: list[bool] = []

    def replace_the_object_while_the_dump_waits(event: ProgressEvent) -> None:
        if event.artifact == "database" and event.kind == "retry" and not changed:
            sim.change_object(backup_id)  # same size, other bytes
            changed.append(True)

    result = await client.download_backup(
        backup_id, tmp_path, progress=replace_the_object_while_the_dump_waits
    )

    assert changed
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_storage_without_validators_resumes_when_a_checksum_will_verify_the_whole_file(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    sim.configure(storage_validators=False)
    backup_id = completed_backup(sim)
    sim.faults.drop_after(100 * KiB, artifact="database")

    result = await client.download_backup(backup_id, tmp_path)

    ranged = [r for r in sim.storage_requests("database") if r.range is not None]
    assert ranged
    assert all("If-Range" not in r.headers for r in ranged)
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


# -- 18. downloads the API streams itself (use_streaming) -----------------------------------


async def test_downloads_streamed_by_the_api_carry_the_key_to_the_api_and_nowhere_else(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    sim.configure(downloads_through_api=True)
    backup_id = completed_backup(sim)

    result = await client.download_backup(backup_id, tmp_path)

    assert result.verified
    for file in result.files:
        assert file.path.read_bytes() == stored_bytes(sim, backup_id, file.artifact)
    streamed = sim.api_requests("/files/")
    assert len(streamed) == 3
    assert all(r.headers.get("Authorization") == f"Bearer {sim.api_key}" for r in streamed)
    assert sim.storage_requests() == []


async def test_a_refused_key_on_a_download_the_api_streams_is_reported_as_what_it_is(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    sim.configure(downloads_through_api=True)
    backup_id = completed_backup(sim)
    sim.faults.api_errors(401, code="key_expired", path_contains="/files/", times=None)

    with pytest.raises(AuthenticationError):
        await client.download_backup(backup_id, tmp_path)

    assert len(sim.api_requests("/download")) == 1  # no renewal loop: the key was refused
