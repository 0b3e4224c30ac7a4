"""Is this storage response usable? A pure function of the status, the headers and what
was asked, returning a decision — so every rule is unit-tested without a server.

The rules, in order:

- 200/206 with a content encoding: refused (the manifest hashes the stored bytes; a
  transcoded body would never verify).
- 206: its ``Content-Range`` must start where we asked, end where we asked (the object's
  end for an open range), give the object's length, and come with the identity we hold
  (a changed ETag, date or size means the object changed): else start over.
- 200: the whole object. To a ranged request it means storage ignored the range, or
  ``If-Range`` failed because the object changed: the receiver decides what to do.
- 416: what we hold cannot be continued: start over.
- 400/401/403 from presigned storage: the URL expired (S3 ``AccessDenied``, GCS
  ``ExpiredToken``): renew the URLs. From the API's own origin the same statuses mean the
  key was refused: reported as such, never retried.
- 404/410: the object is gone. 408/429/5xx: passing, retry (after ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from oec_async._retry import RETRYABLE_STATUSES, server_retry_after
from oec_async.download._partial import ObjectIdentity

__all__ = [
    "Ask",
    "Body",
    "Decision",
    "Fail",
    "Refresh",
    "Restart",
    "Retry",
    "judge_response",
    "parse_content_range",
]

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_EXPIRED = frozenset({400, 401, 403})
_GONE = frozenset({404, 410})


@attrs.frozen
class Ask:
    """What a request asked for."""

    #: First byte asked for (0 and no ``Range`` for the whole object).
    start: int = 0
    #: End (exclusive) of a closed range, None for "to the end".
    end: int | None = None
    #: The object the bytes we hold are of (None: we hold nothing).
    identity: ObjectIdentity | None = None
    #: The URL is on the API's own origin (it carries the key), not presigned storage.
    api_origin: bool = False

    @property
    def ranged(self) -> bool:
        """A ``Range`` header is sent (not the whole object from byte 0)."""
        return self.start > 0 or self.end is not None


@attrs.frozen
class Body:
    """The body is usable: it holds bytes ``start..`` of an object of ``total`` bytes."""

    start: int
    total: int | None
    identity: ObjectIdentity
    #: A 200: the whole object, from byte 0, whatever range was asked.
    whole: bool = False
    #: The object is not the one we hold bytes of (only for ``whole``).
    changed: bool = False


@attrs.frozen
class Restart:
    """What we hold cannot be continued: discard it and start from zero."""

    reason: str


@attrs.frozen
class Refresh:
    """Storage refused the presigned URL (expired): renew the URLs and ask again."""


@attrs.frozen
class Retry:
    """A passing failure: ask again after ``delay`` seconds (None: the usual backoff)."""

    reason: str
    delay: float | None = None


@attrs.frozen
class Fail:
    """Nothing to do but report ``reason``."""

    reason: str
    status: int | None = None


Decision = Body | Restart | Refresh | Retry | Fail


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``(first, last, total)`` of ``bytes first-last/total`` (total None for ``*``)."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def _length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length", "").strip()
    # ASCII only: str.isdigit() also takes "²", which int() then refuses with a ValueError.
    return int(value) if value.isascii() and value.isdigit() else None


def _partial_content(headers: Mapping[str, str], ask: Ask) -> Decision:
    parsed = parse_content_range(headers.get("Content-Range"))
    if parsed is None:
        return Restart("206 without a usable Content-Range")
    first, last, total = parsed
    end = ask.end if ask.end is not None else total
    if total is None or first != ask.start or last < first or end is None or last > end - 1:
        return Restart(f"Content-Range {first}-{last}/{total} is not the range asked for")
    if ask.end is None and last != total - 1:
        return Restart(f"Content-Range {first}-{last}/{total} stops before the end")
    identity = ObjectIdentity.from_headers(headers, total)
    if ask.identity is not None and not ask.identity.same_object(identity):
        return Restart("the object changed since the partial was written")
    return Body(start=first, total=total, identity=ask.identity or identity)


def judge_response(status: int, headers: Mapping[str, str], ask: Ask) -> Decision:
    """The decision for a storage response (see the module docstring for the rules)."""
    if status in (200, 206):
        encoding = headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            return Fail(f"storage sent a content-encoded body ({encoding[:20]})", status)
        if status == 206:
            return _partial_content(headers, ask)
        identity = ObjectIdentity.from_headers(headers, _length(headers))
        changed = ask.identity is not None and not ask.identity.same_object(identity)
        return Body(start=0, total=identity.size, identity=identity, whole=True, changed=changed)
    if status == 416:
        return Restart("storage answered 416 Range Not Satisfiable")
    if status in _EXPIRED:
        if ask.api_origin:
            what = "refused the API key" if status == 401 else "refused this download"
            return Fail(f"the API {what} (HTTP {status})", status)
        return Refresh()
    if status in _GONE:
        return Fail(f"storage has no such object (HTTP {status})", status)
    if status in RETRYABLE_STATUSES:
        return Retry(f"storage answered HTTP {status}", server_retry_after(headers))
    return Fail(f"storage answered HTTP {status}", status)
