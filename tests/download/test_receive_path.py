"""The fast receive path (a large body received by our own protocol into preallocated
buffers), over plain HTTP and over TLS: every failure it can meet behaves as on aiohttp's
path. Each test runs against the simulator over loopback sockets, its storage served
over https with a private CA for the ``https`` cases; the log says the fast path ran.

Over TLS the buffers handed to asyncio are memoryviews: a ``bytearray`` would lose the
bytes of every TLS record after the first (CPython #156275), which the checksum catches.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from oec_async import OECClient
from oec_async.download import ProgressEvent
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory
from tests._support import (
    completed_backup,
    loop_errors_collected,
    mounted_tmpfs,
    stored_bytes,
    within,
)

KiB = 1024
MiB = 1024 * KiB
DUMP = 2 * MiB
#: 64 KiB buffers: a body of four buffers or more takes the fast path.
FAST: dict[str, Any] = {"buffer_size": 64 * KiB, "segments": 1}

World = tuple[OECSimulator, OECClient]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["http", "https"])
async def world(
    request: pytest.FixtureRequest,
    ca: trustme.CA,
    oec_simulator_factory: SimulatorFactory,
    oec_client_factory: ClientFactory,
) -> World:
    options: dict[str, Any] = {}
    client_options: dict[str, Any] = {"timeout": 5.0}
    if request.param == "https":
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
        options["ssl_context"] = server
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        client_options["ssl"] = trusting
    sim = await oec_simulator_factory(seed=1313, dump_size=DUMP, **options)
    return sim, await oec_client_factory(sim, **client_options)


@pytest.fixture
def fast_path_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The fast path's log lines, one per response it received."""
    caplog.set_level(logging.DEBUG, logger="oec_async.download")

    def lines() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if "straight into our buffers" in r.getMessage()
        ]

    return lines


def resumed_at(sim: OECSimulator) -> list[int]:
    """Where each open-ended range request of the dump started."""
    found = []
    for record in sim.storage_requests("database"):
        if match := re.fullmatch(r"bytes=(\d+)-", record.range or ""):
            found.append(int(match.group(1)))
    return found


def assert_fast_path_ran(lines: list[str], sim: OECSimulator) -> None:
    assert any(line.startswith("database: bytes 0-") for line in lines), lines
    https = sim.storage_url.startswith("https://")
    assert all(line.endswith("(TLS)") == https for line in lines), lines


async def test_a_large_body_goes_straight_into_buffers_and_verifies(
    world: World, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    sim, client = world
    backup_id = completed_backup(sim)

    result = await client.download_backup(backup_id, tmp_path, **FAST)

    assert result.verified
    assert result.database is not None
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert result.database.bytes_transferred == DUMP
    assert_fast_path_ran(fast_path_log(), sim)


async def test_a_dropped_connection_on_the_fast_path_resumes_from_the_bytes_on_disk(
    world: World, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    sim, client = world
    backup_id = completed_backup(sim)
    drop_at = 700 * KiB
    sim.faults.drop_after(drop_at)

    result = await client.download_backup(backup_id, tmp_path, **FAST)

    starts = resumed_at(sim)
    assert len(starts) == 1
    assert 0 < starts[0] <= drop_at
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert result.database.bytes_transferred == DUMP  # nothing fetched twice
    assert_fast_path_ran(fast_path_log(), sim)


async def test_a_stall_on_the_fast_path_is_detected_and_resumed(
    world: World, oec_client_factory: ClientFactory, tmp_path: Path
) -> None:
    sim, _ = world
    # A short idle timeout: the stalled connection is given up on, the rest resumed.
    https = sim.storage_url.startswith("https://")
    client = await oec_client_factory(
        sim, timeout=0.5, ssl=world[1].ssl if https else True, max_retry_wait=0.1
    )
    backup_id = completed_backup(sim)
    stall_at = 900 * KiB
    sim.faults.stall_after(stall_at)
    events: list[ProgressEvent] = []
    try:
        result = await within(
            client.download_backup(backup_id, tmp_path, progress=events.append, **FAST)
        )
    finally:
        sim.faults.release_stalls()

    retries = [e for e in events if e.artifact == "database" and e.kind == "retry"]
    assert len(retries) == 1
    assert 0 < resumed_at(sim)[0] <= stall_at
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_a_body_that_ends_before_its_announced_length_is_resumed(
    world: World, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    sim, client = world
    backup_id = completed_backup(sim)
    sim.faults.lie_content_length(extra=64 * KiB)  # announced, never sent, then closed

    result = await client.download_backup(backup_id, tmp_path, **FAST)

    first, *later = sim.storage_requests("database")
    assert first.range is None
    assert later  # the rest was asked for again
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert_fast_path_ran(fast_path_log(), sim)


async def test_a_corrupted_byte_on_the_fast_path_is_caught_and_fetched_again(
    world: World, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    sim, client = world
    backup_id = completed_backup(sim)
    sim.faults.corrupt(1 * MiB + 5)

    result = await client.download_backup(backup_id, tmp_path, **FAST)

    whole = [r for r in sim.storage_requests("database") if r.range is None]
    assert len(whole) == 2  # the first fetch failed its checksum, the second is good
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert len(fast_path_log()) == 2


async def test_cancelled_on_the_fast_path_keeps_what_arrived_and_resumes_from_it(
    world: World, tmp_path: Path
) -> None:
    sim, client = world
    backup_id = completed_backup(sim)
    stall_at = 1 * MiB
    sim.faults.stall_after(stall_at)
    confirmed: list[int] = []
    half_on_disk = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        if event.artifact == "database":
            confirmed.append(event.bytes_done)
            if event.bytes_done >= stall_at // 2:
                half_on_disk.set()

    with loop_errors_collected() as errors:
        task = asyncio.create_task(
            client.download_backup(backup_id, tmp_path, progress=watch, **FAST)
        )
        try:
            await within(sim.wait_for_bytes(backup_id, "database", stall_at))
            await within(half_on_disk.wait())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            sim.faults.release_stalls()
        assert errors == []  # no thread's error left unretrieved
    assert max(confirmed) > 0

    result = await client.download_backup(backup_id, tmp_path, **FAST)

    assert 0 < resumed_at(sim)[0] <= stall_at
    assert result.database is not None
    assert result.database.verified
    assert result.database.resumed_from > 0
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")


async def test_a_segmented_file_splits_after_its_first_response_took_the_fast_path(
    world: World, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    sim, client = world
    sim.configure(bandwidth=8 * MiB)  # one slow connection: the file is split
    backup_id = completed_backup(sim)
    options: dict[str, Any] = {
        "buffer_size": 64 * KiB,
        "segments": 4,
        "segment_threshold": 1 * MiB,
        "min_segment_size": 256 * KiB,
        "segment_probe": 0.0,
    }

    result = await client.download_backup(backup_id, tmp_path, **options)

    ranges = [r.range for r in sim.storage_requests("database") if r.range]
    assert ranges  # other connections fetched ranges
    assert result.database is not None
    assert result.database.verified
    assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert_fast_path_ran(fast_path_log(), sim)


async def test_the_fast_path_writes_where_the_file_system_has_no_direct_io(
    oec_simulator_factory: SimulatorFactory,
    oec_client_factory: ClientFactory,
    tmp_path: Path,
    fast_path_log: Callable[[], list[str]],
) -> None:
    sim = await oec_simulator_factory(seed=1314, dump_size=DUMP)
    client = await oec_client_factory(sim)
    backup_id = completed_backup(sim)
    with mounted_tmpfs(tmp_path / "tmpfs", "size=16m") as dest:  # tmpfs refuses O_DIRECT
        result = await client.download_backup(backup_id, dest, **FAST)
        assert result.database is not None
        assert result.database.verified
        assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
    assert_fast_path_ran(fast_path_log(), sim)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_fast_path_on_uvloop_resumes_a_drop_and_verifies(
    scheme: str, ca: trustme.CA, tmp_path: Path, fast_path_log: Callable[[], list[str]]
) -> None:
    """The ``speed`` extra's loop: its transports take our protocol the same way."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        server, trusting = None, None
        if scheme == "https":
            server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
            trusting = ssl.create_default_context()
            ca.configure_trust(trusting)
        simulators = SimulatorFactory()  # on this test's own (uvloop) loop
        try:
            sim = await simulators(seed=1315, dump_size=DUMP, ssl_context=server)
            backup_id = completed_backup(sim)
            sim.faults.drop_after(700 * KiB)
            async with OECClient(sim.api_key, sim.base_url, ssl=trusting or True) as client:
                result = await client.download_backup(backup_id, tmp_path, **FAST)
            assert result.database is not None
            assert result.database.verified
            assert result.database.path.read_bytes() == stored_bytes(sim, backup_id, "database")
            assert len(resumed_at(sim)) == 1
            assert_fast_path_ran(fast_path_log(), sim)
        finally:
            await simulators.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
