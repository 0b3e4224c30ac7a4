"""Storage that lies about sizes: more bytes than the object, or fewer than it promised.

(Wrong Content-Range, ignored ranges, redirects to another host and expired signatures
are in test_download_resume.py and test_download_safety.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from pathlib import Path

import pytest

from oec_async import DownloadError, IntegrityError, OECClient
from oec_async.testing import OECSimulator, SimulatorFactory
from tests._support import loop_errors_collected, within

KiB = 1024


@pytest.fixture
async def lying_sim(oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    return await oec_simulator_factory(seed=404, dump_size=512 * KiB)


def latest(sim: OECSimulator) -> uuid.UUID:
    return sim.latest_completed(sim.environment_ids[0]).id


def final_dump(sim: OECSimulator, dest: Path, backup_id: uuid.UUID) -> Path:
    return dest / str(sim.backup(backup_id).environment_id) / str(backup_id) / "dump.sql"


async def test_body_longer_than_the_object_once_is_refetched(
    lying_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = latest(lying_sim)
    rule = lying_sim.faults.long_body(3000)
    async with OECClient(lying_sim.api_key, lying_sim.base_url) as client:
        result = await client.download_backup(backup_id, tmp_path)

    assert rule.fired == 1
    assert result.database is not None
    assert result.database.verified
    assert (
        result.database.path.read_bytes()
        == lying_sim.object(backup_id, "database").path.read_bytes()
    )


async def test_body_longer_than_the_object_every_time_is_an_integrity_error(
    lying_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = latest(lying_sim)
    lying_sim.faults.long_body(3000, times=None)
    async with OECClient(lying_sim.api_key, lying_sim.base_url) as client:
        with pytest.raises(IntegrityError, match="manifest"):
            await client.download_backup(backup_id, tmp_path)

    dump = final_dump(lying_sim, tmp_path, backup_id)
    assert not dump.exists()
    assert not dump.with_name("dump.sql.part").exists()


async def test_content_length_longer_than_the_object_every_time_is_an_integrity_error(
    lying_sim: OECSimulator, tmp_path: Path
) -> None:
    backup_id = latest(lying_sim)
    lying_sim.faults.lie_content_length(4096, times=None)  # promises more, then hangs up
    async with OECClient(lying_sim.api_key, lying_sim.base_url) as client:
        with pytest.raises(IntegrityError, match="storage holds 528384 bytes"):
            await client.download_backup(backup_id, tmp_path)

    dump = final_dump(lying_sim, tmp_path, backup_id)
    assert not dump.exists()
    assert not dump.with_name("dump.sql.part").exists()


async def test_storage_that_drips_its_headers_is_a_stall_not_a_hang(
    oec_simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    """One header line every 0.2 s resets a read timeout forever: the headers as a whole
    must arrive within the timeout (issue: dripped response headers never time out)."""

    writers: list[asyncio.StreamWriter] = []

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for line in range(1000):
                writer.write(f"X-Drip-{line}: x\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.2)

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sim = await oec_simulator_factory(
            seed=3, url_signer=lambda b, a, ttl: f"http://127.0.0.1:{port}/{a}"
        )
        async with OECClient(sim.api_key, sim.base_url, timeout=1.0) as client:
            backup_id = sim.latest_completed(sim.environment_ids[0]).id
            with loop_errors_collected() as loop_errors:
                with pytest.raises(DownloadError, match="stalled"):
                    await within(client.download_backup(backup_id, tmp_path, retries=0), 10)
                gc.collect()  # an unretrieved task error is reported when it is collected
                await asyncio.sleep(0)
            assert loop_errors == []  # two transfers failing at once: both retrieved
    finally:
        for writer in writers:  # the connections the client gave up on
            writer.close()
        server.close()
        await server.wait_closed()
