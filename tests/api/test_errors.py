"""Error mapping: every status, from every body shape, and hostile bodies from the API."""

from __future__ import annotations

import copy
import json
import pickle
import time
import uuid
from typing import Any

import pytest

from oec_async import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    OECClient,
    OECError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from oec_async.testing import ClientFactory, ErrorShape, OECSimulator
from oec_async.testing._errors import error_body

STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
}
SHAPES: list[ErrorShape] = ["detail_str", "detail_object", "detail_list", "flat"]
MESSAGE = "Something precise went wrong"


@pytest.fixture
async def once(sim: OECSimulator, oec_client_factory: ClientFactory) -> OECClient:
    """A client that sends exactly one request per call (no retries, no waiting)."""
    return await oec_client_factory(sim, max_retries=0)


def list_path(env: uuid.UUID) -> str:
    return f"GET /environments/{env}/backups?page=1&page_size=20"


def assert_no_key(sim: OECSimulator, exc: BaseException) -> None:
    for shown in (str(exc), repr(exc)):
        assert sim.api_key not in shown
        assert sim.read_only_key not in shown


# -- every status from every body shape ----------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("status", sorted(STATUS_ERRORS))
async def test_status_maps_to_its_error_from_every_body_shape(
    sim: OECSimulator, once: OECClient, status: int, shape: ErrorShape
) -> None:
    sim.faults.api_errors(status, shape=shape, code="precise_code", message=MESSAGE)
    env = sim.environment_ids[0]

    with pytest.raises(APIError) as caught:
        await once.list_backups(env)

    exc = caught.value
    assert type(exc) is STATUS_ERRORS[status]
    assert isinstance(exc, OECError)
    assert exc.status == status
    # {"detail": "text"} carries no code; every other shape does.
    assert exc.code == (None if shape == "detail_str" else "precise_code")
    if shape == "detail_list":
        assert exc.message == f"query.value: {MESSAGE}"
    else:
        assert exc.message == MESSAGE
    assert exc.body == error_body(status, "precise_code", MESSAGE, shape)
    assert exc.method == "GET"
    assert list_path(env) in str(exc)
    assert f"HTTP {status}" in str(exc)
    assert MESSAGE in str(exc)
    assert_no_key(sim, exc)
    assert len(sim.api_requests()) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 422])
async def test_client_errors_are_raised_at_once_without_retry(
    sim: OECSimulator, client: OECClient, status: int
) -> None:
    assert client.max_retries > 0
    sim.faults.api_errors(status, times=None)

    with pytest.raises(STATUS_ERRORS[status]):
        await client.get_backup(sim.latest_completed(sim.environment_ids[0]).id)

    assert len(sim.api_requests()) == 1


async def test_undocumented_status_is_a_plain_api_error(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(418, code="teapot", message="short and stout", shape="flat")

    with pytest.raises(APIError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert type(caught.value) is APIError
    assert (caught.value.status, caught.value.code) == (418, "teapot")
    assert len(sim.api_requests()) == 1


async def test_rate_limit_error_without_any_header_says_one_second_past_the_next_minute(
    sim: OECSimulator, once: OECClient
) -> None:
    sim.faults.api_errors(429, code="rate_limit_exceeded")

    with pytest.raises(RateLimitError) as caught:
        await once.list_backups(sim.environment_ids[0])
    until = time.time() + (caught.value.retry_after or 0)

    assert caught.value.retry_after is not None
    assert 1.0 - 0.5 <= caught.value.retry_after <= 61.0
    assert abs(until % 60 - 1.0) < 0.5  # lands one second past a full minute
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("call", "path"),
    [
        ("get_backup", "GET /backups/{backup}"),
        ("get_download_urls", "GET /backups/{backup}/download?expires_in=3600"),
        ("latest_backup", "GET /environments/{env}/backups?status=completed&page=1&page_size=1"),
    ],
)
async def test_error_message_names_the_path_of_each_endpoint(
    sim: OECSimulator, once: OECClient, call: str, path: str
) -> None:
    env = sim.environment_ids[0]
    backup = sim.latest_completed(env).id
    sim.faults.api_errors(409, message=MESSAGE)
    arg = env if call == "latest_backup" else backup

    with pytest.raises(ConflictError) as caught:
        await getattr(once, call)(arg)

    assert path.format(env=env, backup=backup) in str(caught.value)


# -- errors the simulator gives for real -----------------------------------------------------


async def test_unknown_but_well_formed_key_is_invalid_key(sim: OECSimulator) -> None:
    stranger = "oec_live_ro_" + "Q" * 32

    async with OECClient(stranger, sim.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.list_backups(sim.environment_ids[0])

    assert caught.value.status == 401
    assert caught.value.code == "invalid_key"
    assert stranger not in str(caught.value)
    assert len(sim.api_requests()) == 1


async def test_expired_key_is_key_expired(sim: OECSimulator, client: OECClient) -> None:
    sim.expire_key(sim.api_key)

    with pytest.raises(AuthenticationError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert caught.value.code == "key_expired"
    assert caught.value.message == "API key has expired"
    assert_no_key(sim, caught.value)


async def test_blocked_subscription_is_payment_required(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.configure(subscription_blocked=True)

    with pytest.raises(PaymentRequiredError) as caught:
        await client.latest_backup(sim.environment_ids[0])

    assert caught.value.status == 402
    assert caught.value.code == "subscription_blocked"
    assert len(sim.api_requests()) == 1


async def test_unknown_environment_is_not_found(sim: OECSimulator, client: OECClient) -> None:
    stranger = uuid.UUID("00000000-0000-4000-8000-000000000000")

    with pytest.raises(NotFoundError) as caught:
        await client.list_backups(stranger)

    assert caught.value.status == 404
    assert caught.value.message == "Environment not found"
    assert f"/environments/{stranger}/backups" in str(caught.value)


@pytest.mark.parametrize("call", ["get_backup", "get_download_urls"])
async def test_unknown_backup_is_not_found(sim: OECSimulator, client: OECClient, call: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        await getattr(client, call)(uuid.uuid4())

    assert caught.value.message == "Backup not found"
    assert len(sim.api_requests()) == 1


async def test_key_echoed_by_the_server_is_redacted_from_the_error(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_errors(
        401, shape="flat", code="invalid_key", message=f"key {sim.api_key} is not valid"
    )

    with pytest.raises(AuthenticationError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert sim.api_key not in caught.value.message
    assert_no_key(sim, caught.value)
    assert "is not valid" in str(caught.value)


# -- hostile bodies --------------------------------------------------------------------------

PROXY_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in - Corporate Proxy</title></head>"
    b"<body><form action='/login'><input name='user'></form></body></html>"
)


async def test_html_page_instead_of_json_is_invalid_response(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_raw(PROXY_PAGE, content_type="text/html; charset=utf-8")
    env = sim.environment_ids[0]

    with pytest.raises(InvalidResponseError) as caught:
        await client.list_backups(env)

    exc = caught.value
    assert exc.status == 200
    assert "expected JSON, got text/html" in exc.message
    assert "Sign in - Corporate Proxy" in exc.message
    assert "<input" not in exc.message
    assert list_path(env) in str(exc)
    assert len(sim.api_requests()) == 1


async def test_truncated_json_is_invalid_response(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.api_raw(b'{"items": [{"id": "6f1c2b4e-8a7d-4c3b', content_type="application/json")

    with pytest.raises(InvalidResponseError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert "invalid JSON body (application/json)" in caught.value.message


async def test_empty_body_is_invalid_response(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.api_raw(b"", content_type="application/json")

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_backup(uuid.uuid4())

    assert "empty body" in caught.value.message


async def test_page_missing_required_fields_is_invalid_response(
    sim: OECSimulator, client: OECClient
) -> None:
    sim.faults.api_raw(b'{"items": [], "total": 3}')

    with pytest.raises(InvalidResponseError) as caught:
        await client.list_backups(sim.environment_ids[0])

    message = caught.value.message
    assert message.startswith("unexpected response shape")
    assert "required field missing @ $.page" in message
    assert "$.page_size" in message
    assert caught.value.body == {"items": [], "total": 3}


async def test_backup_missing_its_id_is_invalid_response(
    sim: OECSimulator, client: OECClient
) -> None:
    env = sim.environment_ids[0]
    sim.faults.api_raw(f'{{"environment_id": "{env}", "status": "completed"}}'.encode())

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_backup(uuid.uuid4())

    assert "required field missing @ $.id" in caught.value.message


async def test_download_urls_missing_backup_id_does_not_reveal_the_urls(
    sim: OECSimulator, client: OECClient
) -> None:
    signed = "http://127.0.0.1:9/bucket/x/dump.sql?X-Amz-Signature=deadbeefcafe"
    sim.faults.api_raw(f'{{"database_url": "{signed}"}}'.encode())

    with pytest.raises(InvalidResponseError) as caught:
        await client.get_download_urls(uuid.uuid4())

    assert "$.backup_id" in caught.value.message
    assert "deadbeefcafe" not in str(caught.value)
    assert "deadbeefcafe" not in repr(caught.value.body)  # not kept for a logger to print


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b"null", b'"a string"', b"42"])
async def test_json_that_is_not_an_object_is_invalid_response(
    sim: OECSimulator, client: OECClient, body: bytes
) -> None:
    sim.faults.api_raw(body)

    with pytest.raises(InvalidResponseError, match="unexpected response shape"):
        await client.list_backups(sim.environment_ids[0])


async def test_item_with_a_wrong_type_is_invalid_response(
    sim: OECSimulator, client: OECClient
) -> None:
    item: dict[str, Any] = {"id": "not-a-uuid", "environment_id": str(uuid.uuid4())}
    item["status"] = "completed"
    body = {"items": [item], "total": 1, "page": 1, "page_size": 20, "total_pages": 1}
    sim.faults.api_raw(json.dumps(body).encode())

    with pytest.raises(InvalidResponseError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert "$.items[0].id" in caught.value.message


async def test_oversized_body_is_invalid_response(sim: OECSimulator, client: OECClient) -> None:
    sim.faults.api_raw(b'{"items": ["' + b"x" * (9 * 1024 * 1024) + b'"]}')

    with pytest.raises(InvalidResponseError, match="larger than"):
        await client.list_backups(sim.environment_ids[0])


async def test_json_served_as_text_plain_is_still_read(
    sim: OECSimulator, client: OECClient
) -> None:
    body = b'{"items": [], "total": 0, "page": 1, "page_size": 20, "total_pages": 1}'
    sim.faults.api_raw(body, content_type="text/plain")

    page = await client.list_backups(sim.environment_ids[0])

    assert page.total == 0


async def test_html_error_page_from_a_proxy_is_a_server_error_with_its_title(
    sim: OECSimulator, once: OECClient
) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    sim.faults.api_raw(page, status=502, content_type="text/html")

    with pytest.raises(ServerError) as caught:
        await once.list_backups(sim.environment_ids[0])

    assert caught.value.status == 502
    assert caught.value.code is None
    assert "502 Bad Gateway" in caught.value.message
    assert caught.value.body == page.decode()


async def test_html_page_with_a_client_error_status_keeps_its_class(
    sim: OECSimulator, client: OECClient
) -> None:
    page = b"<html><title>Request blocked by WAF</title></html>"
    sim.faults.api_raw(page, status=403, content_type="text/html")

    with pytest.raises(PermissionDeniedError) as caught:
        await client.list_backups(sim.environment_ids[0])

    assert "Request blocked by WAF" in caught.value.message


# -- errors travel -------------------------------------------------------------------------


async def test_api_error_survives_pickle_and_copy(sim: OECSimulator, once: OECClient) -> None:
    # Errors cross process boundaries (multiprocessing, concurrent.futures) and get copied.
    sim.faults.rate_limit(retry_after=120, code="ip_blocked")
    with pytest.raises(RateLimitError) as caught:
        await once.list_backups(sim.environment_ids[0])
    original = caught.value

    for clone in (pickle.loads(pickle.dumps(original)), copy.copy(original)):  # noqa: S301
        assert type(clone) is RateLimitError
        assert str(clone) == str(original)
        assert (clone.status, clone.code, clone.message) == (429, "ip_blocked", original.message)
        assert clone.retry_after == 120
        assert clone.body == original.body
        assert (clone.method, clone.path) == (original.method, original.path)


async def test_connection_error_survives_pickle() -> None:
    error = APIConnectionError("GET /backups/x: ClientConnectorError: refused")

    clone = pickle.loads(pickle.dumps(error))  # noqa: S301

    assert type(clone) is APIConnectionError
    assert str(clone) == str(error)
