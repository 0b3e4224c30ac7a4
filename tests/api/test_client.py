"""The endpoints against the simulator, over real loopback sockets."""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest

from oec_async import (
    Backup,
    BackupStatus,
    BackupType,
    BadRequestError,
    ConfigurationError,
    OECClient,
    __version__,
)
from oec_async.testing import OECSimulator


def first_env(sim: OECSimulator) -> uuid.UUID:
    return sim.environment_ids[0]


def completed_backup(sim: OECSimulator) -> uuid.UUID:
    return sim.latest_completed(first_env(sim)).id


# -- list_backups --------------------------------------------------------------------------


async def test_list_backups_returns_the_first_page_newest_first(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)

    page = await client.list_backups(env)

    expected = [b.id for b in sim.backups(env)[:20]]
    assert [b.id for b in page.items] == expected
    assert (page.total, page.page, page.page_size, page.total_pages) == (15, 1, 20, 1)
    assert all(isinstance(b, Backup) and b.environment_id == env for b in page.items)


async def test_list_backups_pages_through_several_pages(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)
    held = [b.id for b in sim.backups(env)]

    pages = [await client.list_backups(env, page=n, page_size=4) for n in (1, 2, 3, 4)]

    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert {p.total_pages for p in pages} == {4}
    assert {p.page_size for p in pages} == {4}
    assert [len(p.items) for p in pages] == [4, 4, 4, 3]
    assert [b.id for p in pages for b in p.items] == held
    assert [p.has_next for p in pages] == [True, True, True, False]


async def test_list_backups_page_beyond_the_last_is_empty(
    sim: OECSimulator, client: OECClient
) -> None:
    page = await client.list_backups(first_env(sim), page=9, page_size=10)

    assert page.items == []
    assert page.total == 15
    assert not page.has_next


async def test_list_backups_sends_page_and_page_size(sim: OECSimulator, client: OECClient) -> None:
    await client.list_backups(first_env(sim), page=3, page_size=7)

    (request,) = sim.api_requests("/backups")
    assert request.query["page"] == "3"
    assert request.query["page_size"] == "7"


async def test_list_backups_sends_default_page_and_page_size(
    sim: OECSimulator, client: OECClient
) -> None:
    await client.list_backups(first_env(sim))

    (request,) = sim.api_requests("/backups")
    assert request.query == {"page": "1", "page_size": "20"}


@pytest.mark.parametrize("status", [BackupStatus.FAILED, "failed"])
async def test_list_backups_sends_status_filter(
    sim: OECSimulator, client: OECClient, status: BackupStatus | str
) -> None:
    page = await client.list_backups(first_env(sim), status=status)

    (request,) = sim.api_requests("/backups")
    assert request.query["status"] == "failed"
    assert "backup_type" not in request.query
    assert page.items
    assert {b.status for b in page.items} == {BackupStatus.FAILED}


@pytest.mark.parametrize("backup_type", [BackupType.PRE_DEPLOY, "pre_deploy"])
async def test_list_backups_sends_backup_type_filter(
    sim: OECSimulator, client: OECClient, backup_type: BackupType | str
) -> None:
    page = await client.list_backups(first_env(sim), backup_type=backup_type)

    (request,) = sim.api_requests("/backups")
    assert request.query["backup_type"] == "pre_deploy"
    assert "status" not in request.query
    assert page.items
    assert {b.backup_type for b in page.items} == {BackupType.PRE_DEPLOY}


async def test_list_backups_sends_an_unknown_status_filter_as_is(
    sim: OECSimulator, client: OECClient
) -> None:
    page = await client.list_backups(first_env(sim), status="archived_cold")

    assert sim.api_requests("/backups")[0].query["status"] == "archived_cold"
    assert page.items == []


async def test_list_backups_lists_backups_of_unknown_status_and_type(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)
    newest = sim.backups(env)[0]
    sim.update_backup(newest.id, status="archived_cold", backup_type="pre_migrate")

    page = await client.list_backups(env)

    assert page.items[0].id == newest.id
    assert page.items[0].status == "archived_cold"
    assert page.items[0].backup_type == "pre_migrate"
    assert len(page.items) == 15


async def test_list_backups_accepts_a_uuid_string(sim: OECSimulator, client: OECClient) -> None:
    env = first_env(sim)

    page = await client.list_backups(str(env).upper())

    assert page.total == 15
    assert sim.api_requests()[0].path.endswith(f"/environments/{env}/backups")


# -- iter_backups --------------------------------------------------------------------------


async def test_iter_backups_yields_every_backup_across_pages(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)

    seen = [b.id async for b in client.iter_backups(env, page_size=4)]

    assert seen == [b.id for b in sim.backups(env)]
    assert len(seen) == 15
    assert [r.query["page"] for r in sim.api_requests("/backups")] == ["1", "2", "3", "4"]


async def test_iter_backups_reads_pages_key_variant(sim: OECSimulator, client: OECClient) -> None:
    sim.configure(pages_key="pages")
    env = first_env(sim)

    seen = [b.id async for b in client.iter_backups(env, page_size=4)]

    assert seen == [b.id for b in sim.backups(env)]
    assert len(sim.api_requests("/backups")) == 4


async def test_iter_backups_stops_after_an_exactly_full_last_page(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)

    seen = [b.id async for b in client.iter_backups(env, page_size=5)]

    assert len(seen) == 15
    assert [r.query["page"] for r in sim.api_requests("/backups")] == ["1", "2", "3"]


async def test_iter_backups_with_default_page_size_uses_one_request(
    sim: OECSimulator, client: OECClient
) -> None:
    seen = [b async for b in client.iter_backups(first_env(sim))]

    assert len(seen) == 15
    (request,) = sim.api_requests("/backups")
    assert request.query["page_size"] == "100"


async def test_iter_backups_applies_filters_on_every_page(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)
    held = [b.id for b in sim.backups(env) if b.status == "completed"]

    seen = [b.id async for b in client.iter_backups(env, status="completed", page_size=3)]

    assert seen == held
    assert len(held) == 8
    requests = sim.api_requests("/backups")
    assert len(requests) == 3
    assert all(r.query["status"] == "completed" for r in requests)


@pytest.mark.parametrize("last_page", [1, 0])
async def test_iter_backups_stops_at_a_short_page_whatever_total_pages_claims(
    sim: OECSimulator, client: OECClient, last_page: int
) -> None:
    env = first_env(sim)
    held = [b.to_json() for b in sim.backups(env)]
    pages = [held[:2], held[2 : 2 + last_page]]
    for number, items in enumerate(pages, start=1):
        body = {"items": items, "total": 99, "page": number, "page_size": 2, "total_pages": 50}
        sim.faults.api_raw(json.dumps(body).encode())

    seen = [b.id async for b in client.iter_backups(env, page_size=2)]

    assert [str(i) for i in seen] == [b["id"] for b in held[: 2 + last_page]]
    assert len(sim.api_requests()) == 2


async def test_iter_backups_of_an_empty_environment_yields_nothing(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.add_environment(backups=0)

    assert [b async for b in client.iter_backups(env)] == []
    assert len(sim.api_requests("/backups")) == 1


async def test_iter_backups_yields_a_backup_shifted_by_a_new_one_only_once(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)
    before = [b.id for b in sim.backups(env)]
    seen: list[uuid.UUID] = []

    async for backup in client.iter_backups(env, page_size=5):
        seen.append(backup.id)
        if len(seen) == 5:
            # A new backup appears at the top after page 1 was read, so every older
            # one shifts a place down and page 2 starts with the last item of page 1.
            sim.add_backup(env)

    assert seen == before  # each once; the new one came after we read page 1


# -- get_backup ----------------------------------------------------------------------------


async def test_get_backup_returns_the_backup_with_environment_snapshot(
    sim: OECSimulator, client: OECClient
) -> None:
    backup_id = completed_backup(sim)

    backup = await client.get_backup(backup_id)

    assert backup.id == backup_id
    assert backup.environment_id == first_env(sim)
    assert backup.status is BackupStatus.COMPLETED
    assert backup.is_completed
    assert backup.environment_snapshot == {"odoo_version": "17.0", "name": "sim"}
    assert sim.api_requests()[0].path.endswith(f"/backups/{backup_id}")


async def test_get_backup_of_a_failed_backup_reads_its_error(
    sim: OECSimulator, client: OECClient
) -> None:
    failed = next(b for b in sim.backups(first_env(sim)) if b.status == "failed")

    backup = await client.get_backup(failed.id)

    assert backup.status is BackupStatus.FAILED
    assert backup.error_message == "pg_dump exited with code 1"
    assert backup.task_id is not None
    assert backup.completed_at is None


# -- latest_backup -------------------------------------------------------------------------


async def test_latest_backup_sends_status_completed_and_page_size_one(
    sim: OECSimulator, client: OECClient
) -> None:
    await client.latest_backup(first_env(sim))

    (request,) = sim.api_requests("/backups")
    assert request.query["status"] == "completed"
    assert request.query["page_size"] == "1"


async def test_latest_backup_skips_a_newer_running_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    env = first_env(sim)
    newest = sim.backups(env)[0]
    assert newest.status == "running"

    latest = await client.latest_backup(env)

    assert latest is not None
    assert latest.id == sim.latest_completed(env).id
    assert latest.id != newest.id
    assert latest.status is BackupStatus.COMPLETED


async def test_latest_backup_is_none_without_a_completed_backup(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.add_environment(statuses=["failed", "running"])

    assert await client.latest_backup(env) is None
    assert len(sim.api_requests("/backups")) == 1


# -- get_download_urls ---------------------------------------------------------------------


async def test_get_download_urls_sends_default_expires_in(
    sim: OECSimulator, client: OECClient
) -> None:
    backup_id = completed_backup(sim)

    urls = await client.get_download_urls(backup_id)

    (request,) = sim.api_requests("/download")
    assert request.path.endswith(f"/backups/{backup_id}/download")
    assert request.query == {"expires_in": "3600"}
    assert urls.backup_id == backup_id
    assert urls.expires_in == 3600
    assert urls.expires_at is not None
    assert urls.expires_at.tzinfo is not None


@pytest.mark.parametrize("expires_in", [300, 7200, 86400])
async def test_get_download_urls_sends_expires_in(
    sim: OECSimulator, client: OECClient, expires_in: int
) -> None:
    urls = await client.get_download_urls(completed_backup(sim), expires_in=expires_in)

    assert sim.api_requests("/download")[0].query["expires_in"] == str(expires_in)
    assert urls.expires_in == expires_in


async def test_get_download_urls_gives_three_presigned_urls(
    sim: OECSimulator, client: OECClient
) -> None:
    urls = await client.get_download_urls(completed_backup(sim))

    for url in (urls.database_url, urls.filestore_url, urls.manifest_url):
        assert url is not None
        assert url.startswith(sim.storage_url + "/bucket/")
        assert "X-Amz-Signature=" in url


async def test_get_download_urls_of_a_running_backup_is_bad_request(
    sim: OECSimulator, client: OECClient
) -> None:
    running = sim.backups(first_env(sim))[0]
    assert running.status == "running"

    with pytest.raises(BadRequestError) as caught:
        await client.get_download_urls(running.id)

    assert caught.value.status == 400
    assert caught.value.code == "backup_not_completed"
    assert "running" in caught.value.message
    assert len(sim.api_requests()) == 1  # a 400 is not retried


@pytest.mark.parametrize("missing", ["database", "filestore", "manifest"])
async def test_get_download_urls_gives_null_for_a_missing_file(
    sim: OECSimulator, client: OECClient, missing: str
) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, **{f"has_{missing}": False})

    urls = await client.get_download_urls(backup_id)

    by_artifact = {
        "database": urls.database_url,
        "filestore": urls.filestore_url,
        "manifest": urls.manifest_url,
    }
    assert by_artifact.pop(missing) is None
    assert all(url is not None for url in by_artifact.values())


async def test_get_download_urls_with_every_url_null(sim: OECSimulator, client: OECClient) -> None:
    backup_id = completed_backup(sim)
    sim.update_backup(backup_id, has_database=False, has_filestore=False, has_manifest=False)

    urls = await client.get_download_urls(backup_id)

    assert (urls.database_url, urls.filestore_url, urls.manifest_url) == (None, None, None)


# -- what every request carries ------------------------------------------------------------


async def test_requests_carry_the_user_agent(sim: OECSimulator, client: OECClient) -> None:
    await client.list_backups(first_env(sim))
    await client.get_backup(completed_backup(sim))

    agents = {r.headers.get("User-Agent") for r in sim.api_requests()}
    assert agents == {f"oec-async/{__version__}"}


async def test_custom_user_agent_is_sent(sim: OECSimulator) -> None:
    async with OECClient(sim.api_key, sim.base_url, user_agent="backup-cron/2.1") as client:
        await client.list_backups(first_env(sim))

    assert sim.api_requests()[0].headers["User-Agent"] == "backup-cron/2.1"


async def test_requests_carry_the_bearer_key(sim: OECSimulator, client: OECClient) -> None:
    await client.list_backups(first_env(sim))
    await client.get_download_urls(completed_backup(sim))

    assert [r.headers.get("Authorization") for r in sim.api_requests()] == [
        f"Bearer {sim.api_key}"
    ] * 2


async def test_requests_ask_for_json(sim: OECSimulator, client: OECClient) -> None:
    await client.list_backups(first_env(sim))

    assert sim.api_requests()[0].headers["Accept"] == "application/json"


async def test_api_requests_sent_counts_requests(sim: OECSimulator, client: OECClient) -> None:
    await client.list_backups(first_env(sim))
    await client.get_backup(completed_backup(sim))

    assert client.api_requests_sent == 2 == len(sim.api_requests())


# -- lifecycle -----------------------------------------------------------------------------


async def test_client_works_as_async_context_manager_and_closes(sim: OECSimulator) -> None:
    async with OECClient(sim.api_key, sim.base_url) as client:
        page = await client.list_backups(first_env(sim))

    assert page.total == 15
    with pytest.raises(ConfigurationError, match="closed"):
        await client.list_backups(first_env(sim))
    assert len(sim.api_requests()) == 1


async def test_close_without_any_request_is_fine(sim: OECSimulator) -> None:
    client = OECClient(sim.api_key, sim.base_url)

    await client.close()
    await client.close()  # twice is harmless

    with pytest.raises(ConfigurationError):
        await client.get_backup(completed_backup(sim))


async def test_closed_client_refuses_every_call_without_a_request(sim: OECSimulator) -> None:
    client = OECClient(sim.api_key, sim.base_url)
    await client.list_backups(first_env(sim))
    await client.close()
    sim.reset_records()
    backup_id = completed_backup(sim)

    with pytest.raises(ConfigurationError):
        await client.list_backups(first_env(sim))
    with pytest.raises(ConfigurationError):
        await client.get_backup(backup_id)
    with pytest.raises(ConfigurationError):
        await client.latest_backup(first_env(sim))
    with pytest.raises(ConfigurationError):
        await client.get_download_urls(backup_id)
    with pytest.raises(ConfigurationError):
        [b async for b in client.iter_backups(first_env(sim))]
    with pytest.raises(ConfigurationError):
        await client.storage_session()
    assert sim.requests == []


async def test_borrowed_session_is_used_and_not_closed(sim: OECSimulator) -> None:
    async with aiohttp.ClientSession(headers={"X-Caller": "mine"}) as session:
        async with OECClient(sim.api_key, sim.base_url, session=session) as client:
            await client.list_backups(first_env(sim))

        assert not session.closed
        async with session.get(sim.base_url + f"/backups/{completed_backup(sim)}") as resp:
            assert resp.status == 401  # still usable; and it never got the key itself

    assert sim.api_requests()[0].headers.get("X-Caller") == "mine"


# -- configuration from the environment ----------------------------------------------------


async def test_key_and_base_url_come_from_environment_variables(
    sim: OECSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OEC_API_KEY", sim.read_only_key)
    monkeypatch.setenv("OEC_BASE_URL", sim.base_url)

    async with OECClient() as client:
        page = await client.list_backups(first_env(sim))

    assert client.base_url == sim.base_url
    assert page.total == 15
    assert sim.api_requests()[0].headers["Authorization"] == f"Bearer {sim.read_only_key}"


async def test_arguments_win_over_environment_variables(
    sim: OECSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OEC_API_KEY", "oec_live_ro_" + "e" * 30)
    monkeypatch.setenv("OEC_BASE_URL", "https://elsewhere.example.com/api/public/v1")

    async with OECClient(sim.api_key, sim.base_url) as client:
        await client.list_backups(first_env(sim))

    assert client.base_url == sim.base_url
    assert sim.api_requests()[0].headers["Authorization"] == f"Bearer {sim.api_key}"


async def test_environment_key_with_trailing_newline_is_accepted(
    sim: OECSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OEC_API_KEY", sim.api_key + "\n")

    async with OECClient(base_url=sim.base_url) as client:
        await client.list_backups(first_env(sim))

    assert sim.api_requests()[0].headers["Authorization"] == f"Bearer {sim.api_key}"
