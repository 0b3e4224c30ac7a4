"""Fault switches: what the simulator does wrong, when a test asks it to.

Stream faults fire at an absolute byte offset of an object, so "drop after 100 KiB" means
the same thing for a first request and for a resumed ``Range`` request. ``times=None``
means "every time"; otherwise a rule is used up after firing ``times`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Literal

import attrs

__all__ = ["APIFault", "Faults", "StorageStatusFault", "StreamFault"]

StreamKind = Literal["drop", "stall", "corrupt", "expire", "short_body", "lie_length", "long_body"]
ErrorShape = Literal["detail_str", "detail_object", "detail_list", "flat"]


@attrs.define
class _Rule:
    times: int | None = 1
    artifact: str | None = None
    backup_id: uuid.UUID | None = None
    fired: int = 0

    def matches(self, backup_id: uuid.UUID, artifact: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.artifact is not None and self.artifact != artifact:
            return False
        return self.backup_id is None or self.backup_id == backup_id

    def fire(self) -> None:
        self.fired += 1


@attrs.define
class StreamFault(_Rule):
    kind: StreamKind = "drop"
    offset: int = 0
    seconds: float | None = None  # stall length; None = until release_stalls()
    amount: int = 1  # short_body / lie_length: bytes missing


@attrs.define
class StorageStatusFault(_Rule):
    status: int = 503
    retry_after: float | None = None
    redirect: bool = False
    wrong_range: bool = False
    ignore_range: bool = False


@attrs.define
class APIFault(_Rule):
    status: int = 503
    shape: ErrorShape | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    retry_after_http_date: bool = False
    retry_after_in_body: bool = False
    path_contains: str | None = None
    raw_body: bytes | None = None  # send exactly this body (hostile-input tests)
    content_type: str | None = None

    def matches_path(self, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return self.path_contains is None or self.path_contains in path


class Faults:
    """The switchboard. Every method returns the rule it added, to inspect ``.fired``."""

    def __init__(self) -> None:
        self.stream: list[StreamFault] = []
        self.storage: list[StorageStatusFault] = []
        self.api: list[APIFault] = []
        #: Force every API error body into one of the platform's four shapes.
        self.error_shape: ErrorShape | None = None
        #: Answer expired URLs GCS-style (400 ExpiredToken) instead of S3-style (403).
        self.expiry_style: Literal["s3", "gcs"] = "s3"
        self._stall_release = asyncio.Event()

    def clear(self) -> None:
        self.stream.clear()
        self.storage.clear()
        self.api.clear()
        self.error_shape = None
        self.release_stalls()

    # -- storage: the body of a transfer -----------------------------------------------

    def _stream(self, kind: StreamKind, offset: int, **kw: object) -> StreamFault:
        rule = StreamFault(kind=kind, offset=offset, **kw)  # type: ignore[arg-type]
        self.stream.append(rule)
        return rule

    def drop_after(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """Close the connection abruptly when the body reaches ``offset``."""
        return self._stream("drop", offset, artifact=artifact, backup_id=backup_id, times=times)

    def stall_after(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
        seconds: float | None = None,
    ) -> StreamFault:
        """Stop sending (connection kept open) at ``offset``, for ``seconds`` or until
        :meth:`release_stalls`."""
        return self._stream(
            "stall", offset, artifact=artifact, backup_id=backup_id, times=times, seconds=seconds
        )

    def corrupt(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """Flip the byte at ``offset`` as it is sent (``times=None``: on every transfer)."""
        return self._stream("corrupt", offset, artifact=artifact, backup_id=backup_id, times=times)

    def expire_after(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """At ``offset``, every URL issued so far expires and the connection drops."""
        return self._stream("expire", offset, artifact=artifact, backup_id=backup_id, times=times)

    def short_body(
        self,
        missing: int = 1,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """A clean response whose Content-Length and body both lack the last ``missing``
        bytes: nothing at the HTTP level says it is short."""
        return self._stream(
            "short_body", 0, artifact=artifact, backup_id=backup_id, times=times, amount=missing
        )

    def lie_content_length(
        self,
        extra: int = 1024,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """Announce ``extra`` more bytes than are sent, then close the connection."""
        return self._stream(
            "lie_length", 0, artifact=artifact, backup_id=backup_id, times=times, amount=extra
        )

    def long_body(
        self,
        extra: int = 1024,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """A clean response ``extra`` bytes longer than the object (Content-Length
        included): the bytes are well delivered, and wrong."""
        return self._stream(
            "long_body", 0, artifact=artifact, backup_id=backup_id, times=times, amount=extra
        )

    def release_stalls(self) -> None:
        self._stall_release.set()
        self._stall_release = asyncio.Event()

    async def wait_released(self, seconds: float | None) -> None:
        event = self._stall_release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    # -- storage: the status line ------------------------------------------------------

    def storage_errors(
        self,
        status: int = 503,
        *,
        count: int | None = 1,
        artifact: str | None = None,
        retry_after: float | None = None,
    ) -> StorageStatusFault:
        """Answer the next ``count`` storage requests with ``status``."""
        rule = StorageStatusFault(
            status=status, times=count, artifact=artifact, retry_after=retry_after
        )
        self.storage.append(rule)
        return rule

    def ignore_range(
        self, *, artifact: str | None = None, times: int | None = None
    ) -> StorageStatusFault:
        """Answer ranged requests with 200 and the whole object (as some Ceph setups do)."""
        rule = StorageStatusFault(ignore_range=True, times=times, artifact=artifact)
        self.storage.append(rule)
        return rule

    def wrong_content_range(
        self, *, artifact: str | None = "database", times: int | None = 1
    ) -> StorageStatusFault:
        """Answer a ranged request with 206 and a Content-Range that starts elsewhere."""
        rule = StorageStatusFault(wrong_range=True, times=times, artifact=artifact)
        self.storage.append(rule)
        return rule

    def redirect_storage(
        self, *, artifact: str | None = None, times: int | None = 1
    ) -> StorageStatusFault:
        """Answer with 307 to the same object on the simulator's other storage origin."""
        rule = StorageStatusFault(redirect=True, times=times, artifact=artifact)
        self.storage.append(rule)
        return rule

    # -- API -----------------------------------------------------------------------------

    def api_errors(
        self,
        status: int = 503,
        *,
        count: int | None = 1,
        shape: ErrorShape | None = None,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        path_contains: str | None = None,
    ) -> APIFault:
        """Answer the next ``count`` API requests (whose path contains ``path_contains``)
        with ``status``, in the given error-body shape."""
        rule = APIFault(
            status=status,
            times=count,
            shape=shape,
            code=code,
            message=message,
            retry_after=retry_after,
            path_contains=path_contains,
        )
        self.api.append(rule)
        return rule

    def rate_limit(
        self,
        *,
        count: int | None = 1,
        retry_after: float = 1,
        code: str = "rate_limit_exceeded",
        http_date: bool = False,
        in_body: bool = False,
        path_contains: str | None = None,
    ) -> APIFault:
        """429 for the next ``count`` API requests; ``Retry-After`` as seconds, as an HTTP
        date (``http_date``), or only in the body (``in_body``)."""
        rule = APIFault(
            status=429,
            times=count,
            code=code,
            message="Too many requests",
            retry_after=retry_after,
            retry_after_http_date=http_date,
            retry_after_in_body=in_body,
            path_contains=path_contains,
        )
        self.api.append(rule)
        return rule

    def api_raw(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        count: int | None = 1,
        path_contains: str | None = None,
    ) -> APIFault:
        """Answer with exactly ``body`` (HTML pages, truncated JSON, missing fields...)."""
        rule = APIFault(
            status=status,
            times=count,
            raw_body=body,
            content_type=content_type,
            path_contains=path_contains,
        )
        self.api.append(rule)
        return rule
