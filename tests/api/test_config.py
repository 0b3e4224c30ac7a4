"""Local checks: everything a caller hands the client is refused before any request."""

from __future__ import annotations

from typing import Any

import pytest

from oec_async import ConfigurationError, OECClient
from oec_async._config import DEFAULT_BASE_URL
from oec_async.testing import OECSimulator

GOOD_KEY = "oec_live_ro_" + "A1b2C3d4E5f6G7h8I9j0_-xy"


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's own OEC_* variables must not leak into these tests."""
    monkeypatch.delenv("OEC_API_KEY", raising=False)
    monkeypatch.delenv("OEC_BASE_URL", raising=False)


# -- the key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "oec_live_xx_" + "a" * 30,  # unknown scope
        "oec_test_ro_" + "a" * 30,  # not a live key
        "oec_live_ro_" + "a" * 19,  # token too short
        "oec_live_ro_" + "a" * 201,  # token too long
        "oec_live_ro_" + "a" * 20 + "!",  # character outside the alphabet
        "oec_live_ro_" + "a" * 10 + " " + "a" * 10,  # space inside
        "sk-" + "a" * 40,  # somebody else's key
        "Bearer oec_live_ro_" + "a" * 30,  # header pasted whole
        " ",
    ],
)
async def test_malformed_key_is_refused_without_a_request(sim: OECSimulator, key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OECClient(key, sim.base_url)

    assert "malformed API key" in str(caught.value)
    if key.strip():
        assert key.strip() not in str(caught.value)
    assert len(sim.requests) == 0


@pytest.mark.parametrize("key", [None, ""])
async def test_missing_key_is_refused(sim: OECSimulator, key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="OEC_API_KEY"):
        OECClient(key, sim.base_url)

    assert len(sim.requests) == 0


async def test_malformed_key_from_the_environment_is_refused_without_echo(
    sim: OECSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = "oec_live_rw_" + "s" * 25 + "#"
    monkeypatch.setenv("OEC_API_KEY", leaked)

    with pytest.raises(ConfigurationError) as caught:
        OECClient(base_url=sim.base_url)

    assert leaked not in str(caught.value)
    assert "s" * 25 not in str(caught.value)
    assert len(sim.requests) == 0


@pytest.mark.parametrize("scope", ["ro", "rw"])
def test_well_formed_keys_of_both_scopes_are_accepted(scope: str) -> None:
    key = f"oec_live_{scope}_" + "Az09_-" * 4

    client = OECClient(key)

    assert client.base_url == DEFAULT_BASE_URL


def test_repr_masks_the_key() -> None:
    client = OECClient(GOOD_KEY)

    assert GOOD_KEY not in repr(client)
    assert "oec_live_ro_****" in repr(client)


# -- the base URL --------------------------------------------------------------------------


def test_default_base_url_is_the_platform_over_https() -> None:
    client = OECClient(GOOD_KEY)

    assert client.base_url == "https://api.oec.sh/api/public/v1"
    assert client.base_url.startswith("https://")


@pytest.mark.parametrize(
    "url",
    [
        "http://api.oec.sh/api/public/v1",
        "http://10.0.0.5:8080/api/public/v1",
        "http://192.168.1.10/api",
        "http://localhost.example.com/api",
        "http://api.localhost/api",  # nothing guarantees *.localhost resolves to loopback
        "http://[2001:db8::1]/api",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unencrypted") as caught:
        OECClient(GOOD_KEY, url)

    assert GOOD_KEY not in str(caught.value)


def test_plain_http_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OEC_BASE_URL", "http://api.oec.sh/api/public/v1")

    with pytest.raises(ConfigurationError, match="http"):
        OECClient(GOOD_KEY)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/public/v1",
        "http://127.0.0.1/api",
        "http://localhost:9000/api/public/v1",
        "http://LOCALHOST/api",
        "http://[::1]:8080/api/public/v1",
    ],
)
def test_plain_http_to_loopback_is_accepted(url: str) -> None:
    client = OECClient(GOOD_KEY, url)

    assert client.base_url == url


def test_https_to_any_host_is_accepted_and_trailing_slash_dropped() -> None:
    client = OECClient(GOOD_KEY, "https://backups.example.com/api/public/v1/")

    assert client.base_url == "https://backups.example.com/api/public/v1"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.oec.sh/api",
        "api.oec.sh/api/public/v1",
        "https://",
        "https://user:pass@api.oec.sh/api",
        "https://api.oec.sh/api?token=abc",
        "https://api.oec.sh:99999/api",
    ],
)
def test_invalid_base_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid base URL"):
        OECClient(GOOD_KEY, url)


async def test_loopback_http_client_reaches_the_simulator(sim: OECSimulator) -> None:
    assert sim.base_url.startswith("http://127.0.0.1:")

    async with OECClient(sim.api_key, sim.base_url) as client:
        page = await client.list_backups(sim.environment_ids[0])

    assert page.total == 15


# -- other constructor knobs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"connect_timeout": 0},
        {"max_retries": -1},
        {"max_retries": True},
        {"max_retries": 1.5},
        {"requests_per_minute": 0},
        {"rate_limit_period": 0},
        {"max_connections": 0},
        {"max_connections_per_host": 0},
    ],
)
def test_bad_constructor_knob_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        OECClient(GOOD_KEY, **kwargs)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", "5"),
        ("timeout", None),
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("timeout", True),
        ("connect_timeout", "1"),
        ("max_retries", "3"),
        ("max_retries", None),
        ("max_retry_wait", "60"),
        ("max_retry_wait", -1),
        ("requests_per_minute", 2.5),
        ("requests_per_minute", "100"),
        ("requests_per_minute", True),
        ("rate_limit_period", "60"),
        ("max_connections", 4.0),
        ("max_connections", "16"),
        ("max_connections_per_host", None),
        ("ssl", "yes"),
        ("ssl", 1),
        ("ssl", None),
        ("session", "a session"),
        ("user_agent", 42),
        ("user_agent", ""),
        ("user_agent", "bot\r\nX-Injected: 1"),
    ],
)
def test_bad_option_type_is_refused_naming_the_argument(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be"):
        OECClient(GOOD_KEY, **{name: value})


@pytest.mark.parametrize(("name", "value"), [("api_key", 12345), ("base_url", b"https://x")])
def test_key_and_base_url_of_the_wrong_type_are_refused(name: str, value: Any) -> None:
    kwargs = {"api_key": GOOD_KEY, name: value}

    with pytest.raises(ConfigurationError, match=rf"^{name} must be a string"):
        OECClient(**kwargs)


def test_zero_max_retry_wait_is_accepted() -> None:
    # 0 means "never wait for a server-asked delay": every 429 with Retry-After raises.
    assert OECClient(GOOD_KEY, max_retry_wait=0).retry_policy.max_wait == 0


def test_pacing_can_be_turned_off() -> None:
    assert OECClient(GOOD_KEY, requests_per_minute=None).rate_limiter is None


# -- ids -----------------------------------------------------------------------------------

BAD_IDS: list[Any] = [
    12345,
    None,
    1.5,
    b"6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f",
    "not-a-uuid",
    "../../etc",
    "../../etc/passwd",
    "",
    "6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f/../x",
    "6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f?page=2",
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_environment_id_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, bad: Any
) -> None:
    with pytest.raises(ConfigurationError, match="env_id must be a UUID"):
        await client.list_backups(bad)
    with pytest.raises(ConfigurationError, match="env_id"):
        await client.latest_backup(bad)
    with pytest.raises(ConfigurationError, match="env_id"):
        [b async for b in client.iter_backups(bad)]

    assert len(sim.requests) == 0


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_backup_id_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, bad: Any
) -> None:
    with pytest.raises(ConfigurationError, match="backup_id must be a UUID"):
        await client.get_backup(bad)
    with pytest.raises(ConfigurationError, match="backup_id"):
        await client.get_download_urls(bad)

    assert len(sim.requests) == 0


async def test_id_accepts_uuid_objects_and_strings(sim: OECSimulator, client: OECClient) -> None:
    backup_id = sim.latest_completed(sim.environment_ids[0]).id

    by_object = await client.get_backup(backup_id)
    by_string = await client.get_backup(f"  {str(backup_id).upper()}  ")

    assert by_object == by_string
    assert {r.path for r in sim.api_requests()} == {f"/api/public/v1/backups/{backup_id}"}


async def test_key_passed_as_an_id_by_mistake_is_not_echoed(
    sim: OECSimulator, client: OECClient
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await client.get_backup(sim.api_key)

    assert sim.api_key not in str(caught.value)
    assert len(sim.requests) == 0


# -- expires_in, page, page_size, filters --------------------------------------------------


@pytest.mark.parametrize("expires_in", [299, 86401, 0, -1, True, False, "3600", 3600.0, None])
async def test_bad_expires_in_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, expires_in: Any
) -> None:
    backup_id = sim.latest_completed(sim.environment_ids[0]).id

    with pytest.raises(ConfigurationError, match="expires_in"):
        await client.get_download_urls(backup_id, expires_in=expires_in)

    assert len(sim.requests) == 0


@pytest.mark.parametrize("page_size", [0, 101, -5, True, "20", 20.0, None])
async def test_bad_page_size_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, page_size: Any
) -> None:
    env = sim.environment_ids[0]

    with pytest.raises(ConfigurationError, match="page_size"):
        await client.list_backups(env, page_size=page_size)
    with pytest.raises(ConfigurationError, match="page_size"):
        [b async for b in client.iter_backups(env, page_size=page_size)]

    assert len(sim.requests) == 0


@pytest.mark.parametrize("page", [0, -1, True, "2", 1.0, None])
async def test_bad_page_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, page: Any
) -> None:
    with pytest.raises(ConfigurationError, match="page must be"):
        await client.list_backups(sim.environment_ids[0], page=page)

    assert len(sim.requests) == 0


@pytest.mark.parametrize("bad", ["", "   ", 3, ["completed"]])
async def test_bad_filter_is_refused_without_a_request(
    sim: OECSimulator, client: OECClient, bad: Any
) -> None:
    env = sim.environment_ids[0]

    with pytest.raises(ConfigurationError, match="status"):
        await client.list_backups(env, status=bad)
    with pytest.raises(ConfigurationError, match="backup_type"):
        await client.list_backups(env, backup_type=bad)

    assert len(sim.requests) == 0


@pytest.mark.parametrize(("page_size", "expires_in"), [(1, 300), (100, 86400)])
async def test_boundary_values_are_accepted(
    sim: OECSimulator, client: OECClient, page_size: int, expires_in: int
) -> None:
    env = sim.environment_ids[0]

    page = await client.list_backups(env, page_size=page_size)
    urls = await client.get_download_urls(sim.latest_completed(env).id, expires_in=expires_in)

    assert page.page_size == page_size
    assert urls.expires_in == expires_in
    assert len(sim.api_requests()) == 2


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        OECClient("nope")
