"""The judgement of a storage response, without a server: ``judge_response`` is a pure
function of the status, the headers (case-insensitive, as aiohttp hands them over) and
what was asked, so every rule is a row of a table here.

The judge reads no body: an expired presigned URL is recognised by its status alone
(S3's ``AccessDenied`` 403, GCS's ``ExpiredToken`` 400), whatever the XML says.
"""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from oec_async.download._judge import (
    Ask,
    Body,
    Decision,
    Fail,
    Refresh,
    Restart,
    Retry,
    judge_response,
    parse_content_range,
)
from oec_async.download._partial import ObjectIdentity

SIZE = 1000
ETAG = '"abc123"'
DATE = "Wed, 21 Oct 2025 07:28:00 GMT"
HELD = ObjectIdentity(ETAG, DATE, SIZE)  # the object the bytes on disk are of
VALIDATORS = {"ETag": ETAG, "Last-Modified": DATE}

FRESH = Ask()
RESUME = Ask(start=400, identity=HELD)  # the rest of a partial: bytes=400-
CLOSED = Ask(start=200, end=500, identity=HELD)  # one range of a segmented file


def judge(status: int, ask: Ask = FRESH, **headers: str) -> Decision:
    """``headers`` with ``_`` for ``-`` (``Content_Range``), in a case-insensitive map."""
    return judge_response(
        status, CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}), ask
    )


def kind(decision: Decision) -> str:
    return type(decision).__name__


# -- 206: the range asked for, of the object held -------------------------------------


@pytest.mark.parametrize(
    ("ask", "content_range", "start"),
    [
        (RESUME, "bytes 400-999/1000", 400),
        (CLOSED, "bytes 200-499/1000", 200),
        (FRESH, "bytes 0-999/1000", 0),  # a 206 to a plain GET is fine if it is everything
        (CLOSED, "bytes 200-299/1000", 200),  # shorter than asked: the receiver resumes it
        (RESUME, "  bytes 400-999/1000  ", 400),  # surrounding blanks are not an error
    ],
)
def test_a_206_for_the_range_asked_is_a_body_of_the_object_held(
    ask: Ask, content_range: str, start: int
) -> None:
    decision = judge(206, ask, Content_Range=content_range, **VALIDATORS)

    assert decision == Body(start=start, total=SIZE, identity=ask.identity or HELD)


def test_a_206_to_a_fresh_ask_takes_its_identity_from_the_headers() -> None:
    decision = judge(206, FRESH, Content_Range="bytes 0-999/1000", ETag=ETAG)

    assert decision == Body(start=0, total=SIZE, identity=ObjectIdentity(ETAG, None, SIZE))


@pytest.mark.parametrize(
    ("ask", "content_range", "why"),
    [
        (RESUME, "bytes 0-999/1000", "not the range asked for"),  # from zero, not 400
        (RESUME, "bytes 401-999/1000", "not the range asked for"),  # a byte skipped
        (RESUME, "bytes 400-1000/1000", "not the range asked for"),  # past the end
        (RESUME, "bytes 400-899/1000", "stops before the end"),  # an open range cut short
        (RESUME, "bytes 400-399/1000", "not the range asked for"),  # last before first
        (RESUME, "bytes 400-999/*", "not the range asked for"),  # no total to check
        (CLOSED, "bytes 200-500/1000", "not the range asked for"),  # one byte too many
        (CLOSED, "bytes 199-499/1000", "not the range asked for"),
    ],
)
def test_a_206_for_another_range_restarts(ask: Ask, content_range: str, why: str) -> None:
    decision = judge(206, ask, Content_Range=content_range, **VALIDATORS)

    assert isinstance(decision, Restart)
    assert why in decision.reason


@pytest.mark.parametrize(
    "content_range",
    [
        None,  # no header at all
        "",
        "bytes 400-999",  # no total
        "bytes=400-999/1000",  # the request's syntax, not the response's
        "items 400-999/1000",
        "bytes 400-/1000",
        "bytes -400-999/1000",
        "bytes 400-999/1000, 0-9/1000",
        "bytes 0x10-999/1000",
        "bytes */1000",  # the form of a 416, not of a 206
    ],
)
def test_a_206_without_a_usable_content_range_restarts(content_range: str | None) -> None:
    headers: dict[str, Any] = {} if content_range is None else {"Content_Range": content_range}

    decision = judge(206, RESUME, **headers, **VALIDATORS)

    assert decision == Restart("206 without a usable Content-Range")


@pytest.mark.parametrize(
    "headers",
    [
        {"ETag": '"other"', "Last-Modified": DATE},  # another version of the object
        {"ETag": '"other"'},
        {"Last-Modified": "Thu, 22 Oct 2025 07:28:00 GMT"},  # no ETag: the date decides
    ],
)
def test_a_206_of_a_changed_object_restarts(headers: dict[str, str]) -> None:
    decision = judge_response(
        206, CIMultiDict({"Content-Range": "bytes 400-999/1000", **headers}), RESUME
    )

    assert decision == Restart("the object changed since the partial was written")


def test_a_206_whose_total_is_not_the_size_held_restarts() -> None:
    decision = judge(206, RESUME, Content_Range="bytes 400-1099/1100", **VALIDATORS)

    assert decision == Restart("the object changed since the partial was written")


def test_a_206_without_validators_is_taken_as_the_object_held() -> None:
    """Nothing contradicts the partial (If-Range was sent: storage vouched for it)."""
    decision = judge(206, RESUME, Content_Range="bytes 400-999/1000")

    assert decision == Body(start=400, total=SIZE, identity=HELD)


def test_content_range_parses_first_last_and_total() -> None:
    assert parse_content_range("bytes 0-9/10") == (0, 9, 10)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range(None) is None
    assert parse_content_range("bytes 5-9/") is None


# -- 200: the whole object ---------------------------------------------------------------


def test_a_200_to_a_fresh_ask_is_the_whole_object() -> None:
    decision = judge(200, FRESH, Content_Length="1000", **VALIDATORS)

    assert decision == Body(start=0, total=SIZE, identity=HELD, whole=True, changed=False)


def test_a_200_to_a_ranged_ask_of_the_same_object_is_the_whole_object_from_zero() -> None:
    """Storage ignored the range: the bytes start at 0, not at the 400 asked for."""
    decision = judge(200, RESUME, Content_Length="1000", **VALIDATORS)

    assert decision == Body(start=0, total=SIZE, identity=HELD, whole=True, changed=False)


@pytest.mark.parametrize(
    "headers",
    [
        {"ETag": '"other"', "Last-Modified": DATE, "Content-Length": "1000"},
        {"ETag": ETAG, "Last-Modified": DATE, "Content-Length": "1001"},  # grew
        {"Last-Modified": "Thu, 22 Oct 2025 07:28:00 GMT", "Content-Length": "1000"},
    ],
)
def test_a_200_of_a_changed_object_says_it_changed(headers: dict[str, str]) -> None:
    """If-Range failed: storage sends the new object whole; the receiver starts over."""
    decision = judge_response(200, CIMultiDict(headers), CLOSED)

    assert isinstance(decision, Body)
    assert (decision.whole, decision.changed, decision.start) == (True, True, 0)
    assert decision.identity == ObjectIdentity.from_headers(headers, int(headers["Content-Length"]))


@pytest.mark.parametrize(
    ("content_length", "total"),
    [
        (None, None),  # chunked: the size is unknown
        ("", None),
        (" 1000 ", SIZE),
        ("-1", None),
        ("1e3", None),
        ("1_000", None),  # int() would read it; HTTP would not
        ("0x3e8", None),
        ("1000, 1000", None),
        ("\u00b2", None),  # a superscript two is a digit to str.isdigit, not to int()
        ("\u0663", None),  # an Arabic-Indic three: int() reads it, HTTP has no such digit
    ],
)
def test_a_200_takes_its_size_from_a_plain_decimal_content_length_only(
    content_length: str | None, total: int | None
) -> None:
    headers = {} if content_length is None else {"Content_Length": content_length}

    decision = judge(200, FRESH, **headers)

    assert isinstance(decision, Body)
    assert decision.total == total
    assert decision.identity.size == total


def test_a_200_to_a_fresh_ask_never_counts_as_changed() -> None:
    decision = judge(200, FRESH, ETag='"anything"', Content_Length="7")

    assert isinstance(decision, Body)
    assert decision.changed is False


@pytest.mark.parametrize("status", [200, 206])
@pytest.mark.parametrize("encoding", ["gzip", "br", " GZIP ", "deflate, identity"])
def test_a_content_encoded_body_fails_since_it_would_never_verify(
    status: int, encoding: str
) -> None:
    decision = judge(
        status,
        RESUME,
        Content_Encoding=encoding,
        Content_Range="bytes 400-999/1000",
        Content_Length="600",
        **VALIDATORS,
    )

    assert isinstance(decision, Fail)
    assert decision.status == status
    assert encoding.strip().lower()[:20] in decision.reason


@pytest.mark.parametrize("encoding", ["identity", "Identity", ""])
def test_an_identity_encoding_is_no_encoding(encoding: str) -> None:
    decision = judge(200, FRESH, Content_Encoding=encoding, Content_Length="1000")

    assert isinstance(decision, Body)
    assert decision.total == SIZE


# -- every other status ------------------------------------------------------------------


def test_a_416_restarts_from_zero() -> None:
    decision = judge(416, RESUME, Content_Range="bytes */1000")

    assert decision == Restart("storage answered 416 Range Not Satisfiable")


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_refusal_from_presigned_storage_renews_the_urls(status: int) -> None:
    """S3 says 403 AccessDenied, GCS 400 ExpiredToken: the status is enough (the judge
    reads no body)."""
    assert judge(status, RESUME, Content_Type="application/xml") == Refresh()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "the API refused the API key (HTTP 401)"),
        (403, "the API refused this download (HTTP 403)"),
        (400, "the API refused this download (HTTP 400)"),
    ],
)
def test_a_refusal_from_the_api_origin_fails_and_is_never_retried(status: int, reason: str) -> None:
    decision = judge(status, Ask(api_origin=True))

    assert decision == Fail(reason, status)


@pytest.mark.parametrize("status", [404, 410])
def test_a_missing_object_fails(status: int) -> None:
    assert judge(status, RESUME) == Fail(f"storage has no such object (HTTP {status})", status)


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [
        (503, {"Retry-After": "7"}, 7.0),
        (429, {"retry-after": "2.5"}, 2.5),  # the header's case does not matter
        (500, {"Retry-After-Ms": "1500", "Retry-After": "9"}, 1.5),  # milliseconds first
        (502, {}, None),  # the usual backoff
        (504, {"Retry-After": "soon"}, None),
        (408, {"Retry-After": "-3"}, None),
        (503, {"Retry-After": "nan"}, None),
        (503, {"Retry-After": "inf"}, None),
        (429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a past date: now
    ],
)
def test_a_passing_failure_is_retried_after_the_delay_storage_asks_for(
    status: int, headers: dict[str, str], delay: float | None
) -> None:
    decision = judge_response(status, CIMultiDict(headers), RESUME)

    assert decision == Retry(f"storage answered HTTP {status}", delay)


def test_a_retry_after_date_in_the_future_is_waited_for() -> None:
    decision = judge(503, RESUME, Retry_After="Fri, 01 Jan 2100 00:00:00 GMT")

    assert isinstance(decision, Retry)
    assert decision.delay is not None
    assert decision.delay > 365 * 24 * 3600


@pytest.mark.parametrize("status", [204, 301, 304, 402, 405, 409, 412, 418, 451, 501, 505, 599])
def test_any_other_status_fails_with_that_status(status: int) -> None:
    assert judge(status, RESUME) == Fail(f"storage answered HTTP {status}", status)


# -- the whole table, one line a status --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "Body"),
        (206, "Body"),
        (416, "Restart"),
        (400, "Refresh"),
        (401, "Refresh"),
        (403, "Refresh"),
        (404, "Fail"),
        (410, "Fail"),
        (408, "Retry"),
        (429, "Retry"),
        (500, "Retry"),
        (502, "Retry"),
        (503, "Retry"),
        (504, "Retry"),
        (501, "Fail"),
        (418, "Fail"),
    ],
)
def test_each_status_leads_to_one_kind_of_decision(status: int, expected: str) -> None:
    decision = judge(status, RESUME, Content_Range="bytes 400-999/1000", **VALIDATORS)

    assert kind(decision) == expected


def test_the_ask_is_ranged_unless_it_is_the_whole_object_from_zero() -> None:
    assert not FRESH.ranged
    assert RESUME.ranged
    assert Ask(start=0, end=10).ranged
