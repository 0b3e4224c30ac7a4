"""Secrets stay secret: the API key and presigned signatures never reach logs, reprs or
exception messages, and the key never reaches another origin."""

from __future__ import annotations

import logging
import pickle
import re
import socket
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from oec_async import (
    AuthenticationError,
    BadRequestError,
    DownloadURLs,
    InvalidResponseError,
    NotFoundError,
    OECClient,
    OECError,
    ServerError,
)
from oec_async.testing import OECSimulator

DEBUG_LINE = re.compile(r"^GET (/\S+) -> (\d{3}) in \d+\.\d ms \(attempt (\d+)\)$")


def signature_of(url: str | None) -> str:
    assert url is not None
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def assert_clean(text: str, sim: OECSimulator, signatures: list[str]) -> None:
    assert sim.api_key not in text
    assert sim.read_only_key not in text
    assert "X-Amz-Signature" not in text
    assert "X-Amz-Credential" not in text
    for signature in signatures:
        assert signature not in text


async def run_flow(sim: OECSimulator, client: OECClient) -> tuple[list[DownloadURLs], list[str]]:
    """List, get, latest, download URLs, errors and retries; returns the URLs and the
    text of every exception raised."""
    env = sim.environment_ids[0]
    raised: list[str] = []
    urls: list[DownloadURLs] = []

    await client.list_backups(env, page_size=5)
    latest = await client.latest_backup(env)
    assert latest is not None
    await client.get_backup(latest.id)
    urls.append(await client.get_download_urls(latest.id))
    urls.append(await client.get_download_urls(latest.id, expires_in=600))

    sim.faults.api_errors(503, times=1, retry_after=0.01)  # retried
    urls.append(await client.get_download_urls(latest.id))
    sim.faults.rate_limit(times=1, retry_after=0.01)  # retried
    await client.list_backups(env)

    running = sim.backups(env)[0]
    for failing in (
        client.get_download_urls(running.id),  # 400: not completed
        client.get_backup(uuid.uuid4()),  # 404
    ):
        with pytest.raises(OECError) as caught:
            await failing
        raised.append(str(caught.value))
        raised.append(repr(caught.value))

    # A server that echoes the key back in its error message.
    sim.faults.api_errors(401, shape="flat", message=f"unknown key {sim.api_key}")
    with pytest.raises(AuthenticationError) as caught_auth:
        await client.list_backups(env)
    raised.extend([str(caught_auth.value), repr(caught_auth.value), caught_auth.value.message])
    return urls, raised


async def test_key_and_signatures_never_reach_logs_reprs_or_errors(
    sim: OECSimulator, client: OECClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oec_async")

    urls, raised = await run_flow(sim, client)

    signatures = [signature_of(u.database_url) for u in urls]
    assert len(set(signatures)) == 3  # every call issued fresh URLs
    assert caplog.records, "the flow must have logged something to check"
    assert_clean(caplog.text, sim, signatures)
    assert_clean(repr(client), sim, signatures)
    for u in urls:
        assert_clean(repr(u), sim, signatures)
        assert_clean(str(u), sim, signatures)
    assert len(raised) == 7
    for text in raised:
        assert_clean(text, sim, signatures)


async def test_one_debug_line_per_request(
    sim: OECSimulator, client: OECClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oec_async")

    await run_flow(sim, client)

    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.DEBUG and r.name.startswith("oec_async")
    ]
    parsed = [DEBUG_LINE.match(line) for line in lines]
    assert all(parsed), lines
    seen = [(m.group(1).split("?")[0], int(m.group(2))) for m in parsed if m]
    requests = sim.api_requests()
    assert len(seen) == len(requests)
    assert seen == [(r.path.removeprefix("/api/public/v1"), r.status) for r in requests]
    attempts = [int(m.group(3)) for m in parsed if m]
    assert attempts.count(2) == 2  # the 503 and the 429 were each retried once
    assert set(attempts) == {1, 2}


async def test_debug_line_names_method_path_and_query(
    sim: OECSimulator, client: OECClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oec_async")
    env = sim.environment_ids[0]

    await client.list_backups(env, status="completed", page=2, page_size=3)

    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert line.startswith(
        f"GET /environments/{env}/backups?status=completed&page=2&page_size=3 -> 200 in "
    )
    assert line.endswith("ms (attempt 1)")


async def test_connection_failure_is_logged_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oec_async")
    key = "oec_live_rw_" + "z" * 40
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async with OECClient(key, f"http://127.0.0.1:{port}/api", max_retries=0) as client:
        with pytest.raises(OECError) as caught:
            await client.get_backup(uuid.uuid4())

    assert key not in caplog.text
    assert key not in str(caught.value)
    assert "(attempt 1)" in caplog.text


async def test_key_is_never_sent_to_storage(sim: OECSimulator, client: OECClient) -> None:
    latest = sim.latest_completed(sim.environment_ids[0])
    urls = await client.get_download_urls(latest.id)
    assert urls.manifest_url is not None

    session = await client.storage_session()
    async with session.get(urls.manifest_url) as resp:
        assert resp.status == 200
        await resp.read()

    (fetch,) = sim.storage_requests()
    assert fetch.artifact == "manifest"
    assert "Authorization" not in fetch.headers
    assert all(sim.api_key not in value for value in fetch.headers.values())
    assert all("Authorization" in r.headers for r in sim.api_requests())


async def test_download_urls_repr_shows_paths_only(sim: OECSimulator, client: OECClient) -> None:
    latest = sim.latest_completed(sim.environment_ids[0])

    urls = await client.get_download_urls(latest.id)

    assert urls.database_url is not None
    path = urlsplit(urls.database_url).path
    assert f"{path}?<redacted>" in repr(urls)
    assert signature_of(urls.database_url) not in f"{urls}"


async def test_not_completed_and_not_found_errors_are_clean(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    running = sim.backups(env)[0]

    with pytest.raises(BadRequestError) as bad:
        await client.get_download_urls(running.id)
    with pytest.raises(NotFoundError) as missing:
        await client.list_backups(uuid.uuid4())

    for exc in (bad.value, missing.value):
        assert sim.api_key not in str(exc)
        assert "Bearer" not in str(exc)


def test_the_log_audit_around_every_test_would_catch_a_leak(sim: OECSimulator) -> None:
    """The autouse audit in conftest.py is only worth something if its patterns match
    real secrets (and not their redacted forms)."""
    from tests.conftest import _KEY, _SIGNATURE

    url = sim.presign(sim.latest_completed(sim.environment_ids[0]).id, "database", ttl=60)
    assert _KEY.search(f"GET with {sim.api_key}")
    assert _SIGNATURE.search(url)
    assert not _KEY.search("key oec_live_rw_****")
    assert not _SIGNATURE.search("http://h/dump.sql?<redacted> X-Amz-Signature=<redacted>")


# -- answers that hold secrets: no error keeps or quotes them ----------------------------

SIGNED = "https://storage.example/bucket/dump.sql?X-Amz-Signature=5ec2e7deadbeefcafe0123"
MALFORMED_URL_ANSWERS = [
    # not JSON at all: an HTML page or plain text echoing the URLs
    (f"<html><body>{SIGNED}</body></html>".encode(), "text/html"),
    (f"database_url={SIGNED}".encode(), "text/plain"),
    # truncated JSON
    (f'{{"backup_id": "x", "database_url": "{SIGNED}"'.encode(), "application/json"),
    # JSON of the wrong shape, the URL where an id belongs
    (f'{{"backup_id": "{SIGNED}", "database_url": "{SIGNED}"}}'.encode(), "application/json"),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED_URL_ANSWERS)
async def test_malformed_download_url_answer_keeps_no_signature_on_the_error(
    sim: OECSimulator, client: OECClient, body: bytes, content_type: str
) -> None:
    sim.faults.api_raw(body, content_type=content_type, path_contains="/download")

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_download_urls(uuid.uuid4())

    error = caught.value
    assert error.body is None
    for shown in (str(error), repr(error), error.message, repr(error.__dict__)):
        assert "5ec2e7deadbeefcafe0123" not in shown
    assert b"5ec2e7deadbeefcafe0123" not in pickle.dumps(error)
    assert error.__context__ is None  # no exception holding the body rides along


async def test_error_status_from_the_download_url_endpoint_keeps_no_body(
    sim: OECSimulator,
) -> None:
    sim.faults.api_raw(
        f'{{"detail": "proxy echo {SIGNED}"}}'.encode(), status=502, path_contains="/download"
    )

    async with OECClient(sim.api_key, sim.base_url, max_retries=0) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_download_urls(uuid.uuid4())

    assert caught.value.body is None
    assert b"5ec2e7deadbeefcafe0123" not in pickle.dumps(caught.value)
