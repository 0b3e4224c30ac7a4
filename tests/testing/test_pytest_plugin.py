"""The pytest plugin, as a user's own suite meets it: a test file that takes the fixtures,
run by pytest in a scratch folder (pytester)."""

from __future__ import annotations

import pytest

AUTO_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""
STRICT_INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

USER_TESTS = """
import pytest

from oec_async import OECClient
from oec_async.testing import OECSimulator


async def test_client_reaches_the_simulator(oec_simulator, oec_client):
    assert isinstance(oec_simulator, OECSimulator)
    assert isinstance(oec_client, OECClient)
    env = oec_simulator.environment_ids[0]
    latest = await oec_client.latest_backup(env)
    assert latest is not None
    assert latest.id == oec_simulator.latest_completed(env).id
    assert len(oec_simulator.api_requests()) >= 1


@pytest.mark.oec_simulator(seed=7, environments=5, url_ttl=2)
@pytest.mark.oec_client(max_retries=0)
async def test_markers_configure_both_fixtures(oec_simulator, oec_client):
    assert (oec_simulator.seed, len(oec_simulator.environment_ids)) == (7, 5)
    assert oec_simulator.settings.url_ttl == 2
    assert oec_client.max_retries == 0


async def test_factory_makes_as_many_simulators_as_asked(
    oec_simulator_factory, oec_client_factory, tmp_path
):
    one = await oec_simulator_factory(seed=1, environments=1, dump_size=4096)
    two = await oec_simulator_factory(seed=2, environments=2)
    client = await oec_client_factory(one)
    result = await client.download_backup(one.latest_completed(one.environment_ids[0]).id, tmp_path)
    assert result.verified
    assert one.base_url != two.base_url
    assert len(two.environment_ids) == 2
    grouped = await oec_simulator_factory(environments=6, projects=2)
    assert len(grouped.project_ids) == 2


async def test_a_fault_fires_in_a_users_test(oec_simulator, oec_client, tmp_path):
    rule = oec_simulator.faults.drop_after(1000)
    backup = oec_simulator.latest_completed(oec_simulator.environment_ids[0])
    await oec_client.download_backup(backup.id, tmp_path)
    assert rule.fired == 1
    oec_simulator.faults.assert_all_fired()
"""


def test_a_users_test_file_passes_with_the_fixtures_in_auto_mode(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(test_user=USER_TESTS)

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=4)


def test_the_fixtures_work_in_strict_mode_too(pytester: pytest.Pytester) -> None:
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.asyncio
        async def test_strict(oec_simulator, oec_client):
            page = await oec_client.list_backups(oec_simulator.environment_ids[0])
            assert page.total == 15
        """
    )

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_the_closest_marker_wins_per_argument(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_markers="""
        import pytest

        pytestmark = pytest.mark.oec_simulator(seed=3, environments=2)

        @pytest.mark.oec_simulator(environments=4)
        async def test_closest(oec_simulator):
            assert (oec_simulator.seed, len(oec_simulator.environment_ids)) == (3, 4)
        """
    )

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--strict-markers")

    result.assert_outcomes(passed=1)


def test_assert_all_fired_fails_the_test_that_left_a_fault_idle(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_idle="""
        async def test_idle(oec_simulator_factory):
            sim = await oec_simulator_factory(assert_all_fired=True)
            sim.faults.stall_after(4096, artifact="filestore")
        """
    )

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*1 simulator fault(s) never fired:*", "*stall_after(4096, artifact='filestore')*"]
    )


def test_a_bad_setting_in_a_marker_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.oec_simulator(url_tll=2)
        async def test_typo(oec_simulator):
            pass
        """
    )

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ConfigurationError: unknown simulator setting(s): url_tll*"])


def test_the_plugin_can_be_switched_off(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_INI)
    pytester.makepyfile(
        test_off="""
        async def test_off(oec_simulator):
            pass
        """
    )

    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-p", "no:oec_async")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'oec_simulator' not found*"])
