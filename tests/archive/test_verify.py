"""Re-hashing a real archive: what the downloader wrote, then damaged on purpose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oec_async import OECClient, verify_archive
from oec_async.archive import inventory
from oec_async.testing import OECSimulator
from tests._support import download_lock_held, flip_byte


async def one_backup(sim: OECSimulator, client: OECClient, dest: Path) -> Path:
    backup = sim.latest_completed(sim.environment_ids[0])
    result = await client.download_backup(backup.id, dest)
    assert result.verified
    return result.directory


async def test_an_intact_archive_verifies_at_every_level(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    sizes = sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith("."))

    for path in (tmp_path, folder.parent, folder):
        [result] = verify_archive(path)
        assert result.ok, result.problems
        assert result.verified
        assert result.complete
        assert result.directory == folder
        assert (result.files_checked, result.bytes_checked) == (3, sizes)


async def test_a_flipped_byte_is_found_and_named(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    flip_byte(folder / "dump.sql", 5000)

    [result] = verify_archive(tmp_path)

    assert not result.ok
    assert not result.verified
    [problem] = result.problems
    assert problem.startswith("dump.sql: sha256 ")
    assert "differs from the manifest's" in problem


async def test_missing_truncated_and_replaced_files_are_problems(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    (folder / "dump.sql").unlink()
    with (folder / "filestore.tar.gz").open("r+b") as handle:
        handle.truncate(100)

    [result] = verify_archive(folder)

    assert result.problems == (
        "dump.sql: missing",
        f"filestore.tar.gz: size 100 differs from the manifest's "
        f"{archive_sim.object(result.backup_id, 'filestore').size}",
    )


async def test_a_file_replaced_by_a_symlink_is_not_followed(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    outside = tmp_path / "elsewhere.sql"
    (folder / "dump.sql").rename(outside)  # the very same bytes, but outside the folder
    (folder / "dump.sql").symlink_to(outside)

    [result] = verify_archive(tmp_path)

    assert result.problems == ("dump.sql: is a symbolic link, not the downloaded file",)


async def test_a_tampered_manifest_is_a_problem(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    (folder / "manifest.json").write_text("{not json")

    [result] = verify_archive(tmp_path)

    assert "manifest.json: differs from the manifest that was downloaded" in result.problems
    assert any(p.startswith("manifest.json: cannot be read as a manifest") for p in result.problems)


async def test_without_manifest_checksums_a_copy_is_still_checked_against_the_download(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    backup = archive_sim.latest_completed(archive_sim.environment_ids[1])
    backup = archive_sim.update_backup(backup.id, manifest_variant="no_checksums")
    folder = (await archive_client.download_backup(backup.id, tmp_path)).directory

    [clean] = verify_archive(folder)
    [strict] = verify_archive(folder, strict=True)
    flip_byte(folder / "dump.sql", 10)
    [damaged] = verify_archive(folder)

    assert clean.ok
    assert not clean.verified
    assert not strict.ok
    assert "dump.sql: no checksum to verify against (the manifest has none)" in strict.problems
    [problem] = damaged.problems
    assert problem.startswith("dump.sql: sha256 ")
    assert problem.endswith("recorded when it was downloaded")


async def test_an_incomplete_folder_is_reported_and_not_hashed(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    (folder / ".oec-download.json").unlink()

    [result] = verify_archive(tmp_path)

    assert not result.ok
    assert not result.complete
    assert result.files_checked == 0
    assert result.problems[0].startswith("incomplete: no completion record")


async def test_a_record_copied_from_another_backup_does_not_make_a_folder_complete(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    folder = await one_backup(archive_sim, archive_client, tmp_path)
    impostor = folder.parent / "0d9c9f43-59e6-4b43-9e0a-0a3f0c2c1a11"
    impostor.mkdir()
    for item in folder.iterdir():
        (impostor / item.name).write_bytes(item.read_bytes())

    results = {r.directory: r for r in verify_archive(tmp_path)}

    assert results[folder].ok
    assert not results[impostor].complete


def test_a_path_that_is_not_a_folder_is_refused_by_name(tmp_path: Path) -> None:
    from oec_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        verify_archive(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="is not a folder"):
        verify_archive(tmp_path / "file")


async def test_verify_reads_files_through_no_symlinked_folder(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    elsewhere = tmp_path / "elsewhere"
    folder = await one_backup(archive_sim, archive_client, elsewhere)
    env_link = dest / folder.parent.name
    dest.mkdir()
    env_link.symlink_to(folder.parent)  # an environment folder that is a link
    os.symlink(folder, dest / "latest")

    assert verify_archive(dest) == []
    assert inventory(dest) == []


async def test_a_folder_a_download_is_writing_is_reported_in_progress(
    archive_sim: OECSimulator, archive_client: OECClient, tmp_path: Path
) -> None:

    folder = await one_backup(archive_sim, archive_client, tmp_path)
    (folder / ".oec-download.json").unlink()

    async with download_lock_held(folder):
        [result] = verify_archive(tmp_path)

    assert result.problems == ("a download is in progress (the folder is locked): not checked",)
