"""Every fault a test sets up can be checked: did it fire?"""

from __future__ import annotations

from pathlib import Path

import pytest

from oec_async import ConfigurationError, OECClient
from oec_async.testing import OECSimulator


async def test_unfired_lists_exactly_the_rules_that_never_fired(
    sim: OECSimulator, client: OECClient, tmp_path: Path
) -> None:
    backup_id = sim.latest_completed(sim.environment_ids[0]).id
    dropped = sim.faults.drop_after(1000)
    idle_api = sim.faults.api_errors(503, path_contains="/projects")
    manifest_500 = sim.faults.storage_errors(500, artifact="manifest", backup_id=backup_id)

    await client.download_backup(backup_id, tmp_path)

    assert dropped.fired == 1
    assert manifest_500.fired == 1  # retried past
    assert sim.faults.unfired() == [idle_api]


async def test_assert_all_fired_names_each_idle_rule_by_its_builder_call(
    sim: OECSimulator,
) -> None:
    sim.faults.drop_after(123_456, times=2)
    sim.faults.rate_limit(retry_after=0.5, path_contains="/download")

    with pytest.raises(AssertionError) as caught:
        sim.faults.assert_all_fired()

    message = str(caught.value)
    assert message.startswith("2 simulator fault(s) never fired:")
    assert "drop_after(123456, artifact='database') [times=2, fired 0]" in message
    assert "rate_limit(retry_after=0.5, code='rate_limit_exceeded', path_contains='/download')" in (
        message
    )


async def test_assert_all_fired_passes_once_every_rule_fired(
    sim: OECSimulator, client: OECClient
) -> None:
    rule = sim.faults.api_errors(503, times=1, retry_after=0.01)

    await client.list_backups(sim.environment_ids[0])  # retried past the 503

    assert rule.fired == 1
    sim.faults.assert_all_fired()


async def test_cleared_rules_are_not_reported(sim: OECSimulator) -> None:
    sim.faults.corrupt(10)

    sim.faults.clear()

    assert sim.faults.rules == []
    sim.faults.assert_all_fired()


@pytest.mark.parametrize("times", [0, -1, 1.5, True])
async def test_times_must_be_a_positive_whole_number_or_none(
    sim: OECSimulator, times: object
) -> None:
    with pytest.raises(ConfigurationError, match="times"):
        sim.faults.api_errors(503, times=times)  # type: ignore[arg-type]
    assert sim.faults.rules == []
