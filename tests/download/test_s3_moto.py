"""The downloader against a real S3 implementation: moto's standalone server on loopback.

The simulator plays the platform's API, but the presigned URLs it hands out are made by
boto3 for objects stored in moto, so every storage request here speaks the S3 protocol
of a server we did not write: ranged GETs, ETags, If-Range, presigned query strings.

What moto (5.x, server mode) enforces and what it does not, as these tests found it:
- it honours ``Range: bytes=N-`` with a 206 and a correct ``Content-Range``;
- it sends a strong ``ETag`` (the MD5 of a single-part object) and ``Last-Modified``;
- it does **not** evaluate ``If-Range``: a ranged request with a stale ETag still gets a
  206 of the new object. The downloader does not rely on If-Range alone: it compares the
  206's ETag with the sidecar's and restarts (test below);
- it does **not** enforce the expiry of presigned URLs, nor verify their signatures:
  an expired or tampered URL is still served. Renewal of expired URLs (403
  ``AccessDenied`` "Request has expired", and GCS's 400 ``ExpiredToken``) is therefore
  tested against the simulator, which enforces both (test_download_safety.py); the two
  tests at the end pin moto's behaviour so that a change in moto is noticed.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

boto3 = pytest.importorskip("boto3")
botocore_config = pytest.importorskip("botocore.config")
moto_server = pytest.importorskip("moto.server")

from oec_async import OECClient  # noqa: E402
from oec_async.download import ProgressEvent  # noqa: E402
from oec_async.testing import OECSimulator, SimBackup, SimulatorFactory  # noqa: E402

BUCKET = "oec-backups"
MiB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
        region_name="us-east-1",
        # SigV4 query strings (X-Amz-Signature, X-Amz-Expires), as platforms issue them.
        config=botocore_config.Config(signature_version="s3v4"),
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def upload(s3: Any, sim: OECSimulator, backup: SimBackup) -> None:
    for artifact, obj in sim.objects(backup.id).items():
        s3.put_object(
            Bucket=BUCKET,
            Key=sim.object_key(backup.id, artifact),
            Body=obj.path.read_bytes(),
        )


def signer(s3: Any, sim: OECSimulator, ttl: int | None = None) -> Callable[..., str]:
    def sign(backup: SimBackup, artifact: str, requested: float) -> str:
        url: str = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": BUCKET, "Key": sim.object_key(backup.id, artifact)},
            ExpiresIn=int(ttl if ttl is not None else requested),
        )
        return url

    return sign


@pytest.fixture
async def s3_sim(s3: Any, oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    sim = await oec_simulator_factory(seed=31, dump_size=24 * MiB, filestore_size=256 * 1024)
    fresh = {"database": f"dump-{uuid.uuid4().hex[:8]}.sql"}  # fresh S3 keys
    backup = sim.update_backup(latest(sim).id, file_names=fresh)
    await asyncio.to_thread(upload, s3, sim, backup)
    sim.configure(url_signer=signer(s3, sim))
    return sim


def latest(sim: OECSimulator) -> SimBackup:
    return sim.latest_completed(sim.environment_ids[0])


def stored(sim: OECSimulator, artifact: str) -> bytes:
    return sim.object(latest(sim).id, artifact).path.read_bytes()


async def interrupted_download(client: OECClient, sim: OECSimulator, dest: Path) -> int:
    """Start a download and cancel it (as Ctrl-C would) once 4 MiB of the dump are on
    disk; return how much of it is there."""
    reached = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        if event.artifact == "database" and event.bytes_done >= 4 * MiB:
            reached.set()

    task = asyncio.create_task(
        client.download_backup(latest(sim).id, dest, progress=watch, buffer_size=256 * 1024)
    )
    await asyncio.wait_for(reached.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    backup = latest(sim)
    part = (
        dest / str(backup.environment_id) / str(backup.id) / f"{backup.file_names['database']}.part"
    )
    return part.stat().st_size


async def test_download_from_s3_is_byte_equal_and_verified(
    s3_sim: OECSimulator, tmp_path: Path
) -> None:
    async with OECClient(s3_sim.api_key, s3_sim.base_url) as client:
        result = await client.download_backup(latest(s3_sim).id, tmp_path)

    assert result.verified
    for downloaded in result.files:
        assert downloaded.path.read_bytes() == stored(s3_sim, downloaded.artifact)
    assert result.database is not None
    assert result.database.path.name == latest(s3_sim).file_names["database"]
    assert s3_sim.storage_requests() == []  # every byte came from S3, none from the simulator


async def test_interrupted_download_resumes_from_s3_with_a_range(
    s3_sim: OECSimulator, tmp_path: Path
) -> None:
    async with OECClient(s3_sim.api_key, s3_sim.base_url) as client:
        kept = await interrupted_download(client, s3_sim, tmp_path)
        result = await client.download_backup(latest(s3_sim).id, tmp_path)

    size = len(stored(s3_sim, "database"))
    assert 0 < kept < size
    assert result.database is not None
    assert result.database.resumed_from == kept
    assert result.database.bytes_transferred == size - kept  # S3 answered the Range
    assert result.database.path.read_bytes() == stored(s3_sim, "database")
    assert result.verified


async def test_object_replaced_in_s3_restarts_instead_of_splicing(
    s3: Any, s3_sim: OECSimulator, tmp_path: Path
) -> None:
    async with OECClient(s3_sim.api_key, s3_sim.base_url) as client:
        kept = await interrupted_download(client, s3_sim, tmp_path)
        s3_sim.change_object(latest(s3_sim).id)  # new bytes and a new manifest...
        await asyncio.to_thread(upload, s3, s3_sim, latest(s3_sim))  # ...same S3 keys
        result = await client.download_backup(latest(s3_sim).id, tmp_path)

    assert kept > 0
    assert result.database is not None
    assert result.database.path.read_bytes() == stored(s3_sim, "database")  # the new bytes
    assert result.database.bytes_transferred >= len(stored(s3_sim, "database"))
    assert result.verified


async def test_moto_ignores_if_range_so_the_etag_of_the_206_is_checked(
    s3: Any, s3_sim: OECSimulator
) -> None:
    """Pins the moto behaviour the module docstring describes (if moto starts honouring
    If-Range, this fails and the docstring must change)."""
    key = s3_sim.object_key(latest(s3_sim).id, "database")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
    async with aiohttp.ClientSession() as session:
        headers = {"Range": "bytes=10-", "If-Range": '"0123456789abcdef0123456789abcdef"'}
        async with session.get(url, headers=headers) as resp:
            status, etag = resp.status, resp.headers.get("ETag")
            await resp.read()

    assert status == 206  # a server honouring If-Range would send 200 for a stale ETag
    assert etag is not None
    assert not etag.startswith("W/")


async def test_moto_does_not_enforce_presigned_expiry(s3: Any, s3_sim: OECSimulator) -> None:
    """Pins what moto does not enforce (see the module docstring): an expired presigned
    URL still works there. Renewal after a 403 "Request has expired" is tested against
    the simulator, which enforces it (test_download_safety.py). If moto starts enforcing
    expiry, this fails: then add the same test against moto."""
    url = signer(s3, s3_sim, ttl=1)(latest(s3_sim), "manifest", 1)
    await asyncio.sleep(2.1)  # S3 counts presigned lifetimes in whole seconds
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        status = resp.status
        await resp.read()

    assert status == 200


async def test_moto_does_not_verify_presigned_signatures(s3: Any, s3_sim: OECSimulator) -> None:
    url = signer(s3, s3_sim)(latest(s3_sim), "manifest", 3600)
    tampered = re.sub(r"(X-Amz-Signature=)[0-9a-f]{8}", r"\g<1>00000000", url)
    assert tampered != url
    async with aiohttp.ClientSession() as session, session.get(tampered) as resp:
        status = resp.status
        await resp.read()

    assert status == 200
