"""Storage that lies about sizes: more bytes than the object, or fewer than it promised.

(Wrong Content-Range, ignored ranges, redirects to another host and expired signatures
are in test_download_resume.py and test_download_safety.py.)
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from oec_async import IntegrityError, OECClient
from oec_async.testing import OECSimulator, SimulatorFactory

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
