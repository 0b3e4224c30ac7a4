"""The API's answers are checked against the questions: an answer about another backup,
another environment or another status is an InvalidResponseError naming what differs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from oec_async import InvalidResponseError, OECClient
from oec_async.testing import OECSimulator


def page_of(items: list[dict[str, Any]], *, page: int = 1, page_size: int = 20) -> bytes:
    body = {"items": items, "total": 40, "page": page, "page_size": page_size, "total_pages": 2}
    return json.dumps(body).encode()


def completed_of(sim: OECSimulator, env: uuid.UUID) -> list[dict[str, Any]]:
    return [b.to_json() for b in sim.backups(env) if b.status == "completed"]


async def test_get_backup_answering_another_id_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = sim.backups(sim.environment_ids[0])[:2]
    sim.faults.api_raw(json.dumps(other.to_json(detail=True)).encode())

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_backup(asked.id)

    assert f"id is {other.id}, asked {asked.id}" in caught.value.message


async def test_listing_holding_another_environments_backup_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = sim.environment_ids[:2]
    items = completed_of(sim, asked)[:2] + completed_of(sim, other)[:1]
    sim.faults.api_raw(page_of(items))

    with pytest.raises(InvalidResponseError) as caught:
        await client.list_backups(asked)

    assert f"entry 2: environment_id is {other}, asked {asked}" in caught.value.message


async def test_latest_backup_of_another_environment_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = sim.environment_ids[:2]
    sim.faults.api_raw(page_of(completed_of(sim, other)[:1], page_size=1))

    with pytest.raises(InvalidResponseError, match=f"environment_id is {other}"):
        await client.latest_backup(asked)


async def test_latest_backup_that_is_not_completed_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    running = next(b for b in sim.backups(env) if b.status != "completed")
    sim.faults.api_raw(page_of([running.to_json()], page_size=1))

    with pytest.raises(InvalidResponseError, match=f"status is {running.status}, asked completed"):
        await client.latest_backup(env)


async def test_iter_backups_page_holding_another_environments_backup_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = sim.environment_ids[:2]
    seen: list[uuid.UUID] = []

    async def iterate() -> None:
        async for backup in client.iter_backups(asked, page_size=4):
            seen.append(backup.id)
            if len(seen) == 4:  # the next page answers with another environment's backups
                sim.faults.api_raw(page_of(completed_of(sim, other)[:4], page=2, page_size=4))

    with pytest.raises(InvalidResponseError, match=f"environment_id is {other}"):
        await iterate()

    assert seen == [b.id for b in sim.backups(asked)[:4]]


async def test_download_urls_for_another_backup_are_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    asked, other = (b.id for b in sim.backups(sim.environment_ids[0])[:2])
    answer = {"backup_id": str(other), "database_url": None, "expires_in": 3600}
    sim.faults.api_raw(json.dumps(answer).encode())

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_download_urls(asked)

    assert f"backup_id is {other}, asked {asked}" in caught.value.message
    assert caught.value.body is None  # still a secret answer


async def test_filtered_listing_with_another_type_is_refused(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    scheduled = [b.to_json() for b in sim.backups(env) if b.backup_type != "manual"]
    sim.faults.api_raw(page_of(scheduled[:1]))

    with pytest.raises(InvalidResponseError, match=r"backup_type is \w+, asked manual"):
        await client.list_backups(env, backup_type="manual")


async def test_answers_that_fit_the_question_pass(sim: OECSimulator, client: OECClient) -> None:
    env = sim.environment_ids[0]

    listed = [b async for b in client.iter_backups(env, status="completed", page_size=3)]
    latest = await client.latest_backup(env)

    assert latest is not None
    assert latest.id == listed[0].id
    assert (await client.get_backup(latest.id)).id == latest.id
    assert (await client.get_download_urls(latest.id)).backup_id == latest.id
