"""The simulator's one configuration surface: ``SimulatorSettings`` at construction,
``sim.configure(...)`` on a running simulator, names and values checked."""

from __future__ import annotations

import attrs
import pytest

from oec_async import ConfigurationError, OECClient
from oec_async.testing import OECSimulator, SimulatorFactory, SimulatorSettings


def test_unknown_setting_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="url_tll") as caught:
        SimulatorSettings.build(url_tll=2)

    assert "url_ttl" in str(caught.value)  # the known names are listed


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("url_ttl", 0),
        ("url_ttl", -1),
        ("read_limit", 2.5),
        ("read_limit", True),
        ("rate_window", 0),
        ("bandwidth", "fast"),
        ("expiry_style", "azure"),
        ("error_shape", "xml"),
        ("pages_key", "page_count"),
        ("subscription_blocked", 1),
        ("url_signer", "not callable"),
    ],
)
def test_bad_setting_value_is_refused_naming_the_setting(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=name):
        SimulatorSettings.build(**{name: value})


def test_settings_are_frozen() -> None:
    settings = SimulatorSettings()

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.url_ttl = 2  # type: ignore[misc]


async def test_configure_refuses_an_unknown_name_and_changes_nothing(sim: OECSimulator) -> None:
    before = sim.settings

    with pytest.raises(ConfigurationError, match="bandwith"):
        sim.configure(bandwith=10, url_ttl=5)

    assert sim.settings == before


async def test_configure_takes_effect_on_the_running_simulator(
    sim: OECSimulator, client: OECClient
) -> None:
    backup = sim.latest_completed(sim.environment_ids[0])

    new = sim.configure(url_ttl=2)
    urls = await client.get_download_urls(backup.id)

    assert new is sim.settings
    assert new.url_ttl == 2
    assert urls.expires_in == 2


async def test_settings_given_at_construction_are_honoured(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    sim = await oec_simulator_factory(settings=SimulatorSettings(pages_key="pages"))
    async with OECClient(sim.api_key, sim.base_url) as client:
        await client.list_backups(sim.environment_ids[0])

    assert sim.settings.pages_key == "pages"
    assert sim.api_requests()[0].status == 200


async def test_factory_setting_names_apply_over_a_settings_object(
    oec_simulator_factory: SimulatorFactory,
) -> None:
    sim = await oec_simulator_factory(
        settings=SimulatorSettings(url_ttl=9, bandwidth=1000.0), url_ttl=3
    )

    assert (sim.settings.url_ttl, sim.settings.bandwidth) == (3, 1000.0)
