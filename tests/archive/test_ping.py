"""healthchecks.io-style pings against a loopback HTTP server: the sequence, the exit
status, and that a failing ping never fails the run nor shows the URL's secret path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from oec_async import ConfigurationError
from oec_async.archive import Pinger, redact_url
from tests._support import PingServer, serve_pings

SECRET = "5a9d3c1e-7b2f-4e8a-9c6d-0f1e2d3c4b5a"


@pytest.fixture
async def ping_server() -> AsyncIterator[PingServer]:
    async with serve_pings() as server:
        yield server


async def test_a_successful_run_pings_start_then_success_with_one_run_id(
    ping_server: PingServer,
) -> None:
    pinger = Pinger(f"{ping_server.base_url}/{SECRET}")

    assert await pinger.start()
    assert await pinger.finish(0, "3 environments pulled")

    [(_, start_path, start_query, _), (method, path, query, body)] = ping_server.received
    assert (start_path, path) == (f"/{SECRET}/start", f"/{SECRET}")
    assert method == "POST"
    assert start_query["rid"] == query["rid"] == str(pinger.run_id)
    assert body == "3 environments pulled"


async def test_a_failed_run_pings_its_exit_status(ping_server: PingServer) -> None:
    pinger = Pinger(f"{ping_server.base_url}/ping-key/nightly-pull/?create=1")

    await pinger.start()
    await pinger.finish(1)

    paths = [(path, query.get("create")) for _, path, query, _ in ping_server.received]
    assert paths == [("/ping-key/nightly-pull/start", "1"), ("/ping-key/nightly-pull/1", "1")]


async def test_an_unreachable_service_is_a_warning_without_the_secret_path(
    ping_server: PingServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Port 1 on loopback: nobody listens, the connection is refused at once.
    unreachable = Pinger(f"http://127.0.0.1:1/{SECRET}", timeout=1.0, retries=1)
    caplog.set_level(logging.WARNING, logger="oec_async.archive")

    assert await unreachable.finish(2) is False

    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("ping http://127.0.0.1/… (2) failed")
    assert SECRET not in caplog.text
    assert SECRET not in repr(unreachable)
    assert ping_server.received == []


async def test_a_slow_service_times_out_quickly(
    ping_server: PingServer, caplog: pytest.LogCaptureFixture
) -> None:
    ping_server.hold = asyncio.Event()
    pinger = Pinger(f"{ping_server.base_url}/{SECRET}", timeout=0.2, retries=0)

    assert await asyncio.wait_for(pinger.start(), 3.0) is False
    assert "TimeoutError" in caplog.text
    assert SECRET not in caplog.text


async def test_a_refusing_service_is_not_asked_again(ping_server: PingServer) -> None:
    ping_server.status = 404
    pinger = Pinger(f"{ping_server.base_url}/{SECRET}", retries=2)

    assert await pinger.finish(0) is False
    assert len(ping_server.received) == 1


def test_urls_are_checked_and_redacted() -> None:
    assert redact_url(f"https://hc-ping.com/{SECRET}") == "https://hc-ping.com/…"
    with pytest.raises(ConfigurationError) as caught:
        Pinger(f"ftp://hc-ping.com/{SECRET}")
    assert SECRET not in str(caught.value)
