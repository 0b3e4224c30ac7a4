"""TLS: a server whose certificate the system does not trust is refused by default, and
accepted only with an explicit SSL context (the API and the storage downloads alike).

The certificates come from a throwaway CA made by trustme; the simulator serves https on
loopback with them.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from oec_async import APIConnectionError, OECClient, StorageError
from oec_async.testing import ClientFactory, OECSimulator, SimulatorFactory


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_sim(ca: trustme.CA, oec_simulator_factory: SimulatorFactory) -> OECSimulator:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    return await oec_simulator_factory(seed=5, ssl_context=server_context)


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_self_signed_api_is_refused_by_default(tls_sim: OECSimulator) -> None:
    assert tls_sim.base_url.startswith("https://")
    async with OECClient(tls_sim.api_key, tls_sim.base_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.list_backups(tls_sim.environment_ids[0])

    assert "certificate" in str(caught.value).lower()
    assert tls_sim.api_requests() == []  # the handshake failed: no request was ever made
    assert tls_sim.api_key not in str(caught.value)


async def test_explicit_ssl_context_trusts_the_private_ca(
    tls_sim: OECSimulator, ca: trustme.CA, tmp_path: Path
) -> None:
    async with OECClient(tls_sim.api_key, tls_sim.base_url, ssl=trusting(ca)) as client:
        env = tls_sim.environment_ids[0]
        page = await client.list_backups(env)
        result = await client.download_backup(tls_sim.latest_completed(env).id, tmp_path)

    assert page.total > 0
    assert result.verified
    assert all(r.server.startswith("storage") for r in tls_sim.storage_requests())
    assert result.database is not None
    backup_id = tls_sim.latest_completed(env).id
    assert (
        result.database.path.read_bytes() == tls_sim.object(backup_id, "database").path.read_bytes()
    )


async def test_storage_with_an_untrusted_certificate_is_refused(
    tls_sim: OECSimulator,
    tmp_path: Path,
    oec_simulator_factory: SimulatorFactory,
    oec_client_factory: ClientFactory,
) -> None:
    # The API is reached over plain http on loopback; its URLs point at https storage
    # whose certificate nobody trusts: the download must fail, not fall back to anything.
    # (The same seed makes the same world and signing secret as tls_sim's.)
    plain_api = await oec_simulator_factory(
        seed=tls_sim.seed, storage_public_url=tls_sim.storage_url
    )
    env = tls_sim.environment_ids[0]
    client = await oec_client_factory(plain_api)
    with pytest.raises(StorageError) as caught:
        await client.download_backup(tls_sim.latest_completed(env).id, tmp_path, retries=0)

    assert "certificate" in str(caught.value).lower()
    folder = tmp_path / str(env) / str(tls_sim.latest_completed(env).id)
    assert not (folder / "dump.sql").exists()
