"""``sim.update_backup``: the one way to change a backup, and a change that touches its
files takes effect even after the files were made."""

from __future__ import annotations

import json
import uuid

import aiohttp
import attrs
import pytest

from oec_async import ConfigurationError, OECClient
from oec_async.testing import OECSimulator


def newest_completed(sim: OECSimulator) -> uuid.UUID:
    return sim.latest_completed(sim.environment_ids[0]).id


async def test_manifest_variant_changed_after_the_files_exist_rewrites_the_manifest(
    sim: OECSimulator,
) -> None:
    backup_id = newest_completed(sim)
    before = json.loads(sim.object(backup_id, "manifest").path.read_bytes())  # files made

    sim.update_backup(backup_id, manifest_variant="md5")

    after = json.loads(sim.object(backup_id, "manifest").path.read_bytes())
    assert "sha256" in before["files"]["database"]
    assert after["files"]["database"]["checksum"].startswith("md5:")


async def test_filestore_removed_after_the_files_exist_is_gone_from_urls_and_storage(
    sim: OECSimulator, client: OECClient
) -> None:
    backup_id = newest_completed(sim)
    old_path = sim.object(backup_id, "filestore").path

    sim.update_backup(backup_id, has_filestore=False)
    urls = await client.get_download_urls(backup_id)

    assert urls.filestore_url is None
    assert "filestore" not in sim.objects(backup_id)
    assert not old_path.exists()
    manifest = json.loads(sim.object(backup_id, "manifest").path.read_bytes())
    assert set(manifest["files"]) == {"database"}


async def test_renamed_file_is_served_under_its_new_name_only(
    sim: OECSimulator, client: OECClient
) -> None:
    backup_id = newest_completed(sim)
    old = await client.get_download_urls(backup_id)  # files made under the default names

    sim.update_backup(backup_id, file_names={"database": "prod.sql"})
    new = await client.get_download_urls(backup_id)

    assert new.database_url is not None
    assert old.database_url is not None
    assert new.database_url.split("?")[0].endswith("/prod.sql")
    async with aiohttp.ClientSession() as session:
        async with session.get(new.database_url) as fresh:
            assert fresh.status == 200
            assert await fresh.read() == sim.object(backup_id, "database").path.read_bytes()
        async with session.get(old.database_url) as stale:
            assert stale.status == 404
    assert sim.backup(backup_id).file_names["filestore"] == "filestore.tar.gz"


async def test_status_change_shows_in_the_api(sim: OECSimulator, client: OECClient) -> None:
    backup_id = newest_completed(sim)

    updated = sim.update_backup(backup_id, status="archived_cold")
    backup = await client.get_backup(backup_id)

    assert updated.status == "archived_cold" == sim.backup(backup_id).status
    assert backup.status == "archived_cold"


async def test_unknown_field_is_refused_and_nothing_changes(sim: OECSimulator) -> None:
    backup_id = newest_completed(sim)
    before = sim.backup(backup_id)

    with pytest.raises(ConfigurationError, match="has_filstore"):
        sim.update_backup(backup_id, has_filstore=False, status="failed")

    assert sim.backup(backup_id) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"manifest_variant": "yaml"},
        {"has_filestore": "no"},
        {"dump_size": -1},
        {"file_names": {"logs": "x.log"}},
    ],
)
async def test_bad_value_is_refused(sim: OECSimulator, changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        sim.update_backup(newest_completed(sim), **changes)


async def test_backups_are_frozen_so_a_direct_change_cannot_silently_do_nothing(
    sim: OECSimulator,
) -> None:
    backup = sim.backup(newest_completed(sim))

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        backup.has_filestore = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        backup.file_names["database"] = "x.sql"  # type: ignore[index]


async def test_change_object_gives_new_bytes_and_a_new_etag(sim: OECSimulator) -> None:
    backup_id = newest_completed(sim)
    before = sim.object(backup_id, "database")

    sim.change_object(backup_id)
    after = sim.object(backup_id, "database")

    assert after.etag != before.etag
    assert after.sha256 != before.sha256
    assert sim.backup(backup_id).version == 1


async def test_new_backup_is_listed_first(sim: OECSimulator, client: OECClient) -> None:
    env = sim.environment_ids[0]

    added = sim.add_backup(env, status="completed")
    page = await client.list_backups(env)

    assert page.items[0].id == added.id
    assert sim.latest_completed(env).id == added.id
    assert added.created_at > sim.backups(env)[1].created_at
