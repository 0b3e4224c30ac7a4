"""Fault switches: what the simulator does wrong, when a test asks it to.

``Faults`` is the public switchboard (``sim.faults``): every builder adds one rule and
returns it, so a test can read ``rule.fired``. ``times=N`` uses a rule up after it fired N
times; ``times=None`` fires it every time. ``unfired()`` and ``assert_all_fired()`` tell a
test whether every fault it set up really happened (a fault that never fired proves
nothing).

Stream faults fire at an absolute byte offset of an object, so "drop after 100 KiB" means
the same thing for a first request and for a resumed ``Range`` request.

The handlers read the rules through ``FaultRules``, the private half.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Literal

import attrs

from oec_async.errors import ConfigurationError
from oec_async.testing._errors import ErrorShape

__all__ = [
    "APIFault",
    "BackupFault",
    "FaultRule",
    "FaultRules",
    "Faults",
    "StorageStatusFault",
    "StreamFault",
]

StreamKind = Literal["drop", "stall", "corrupt", "expire", "short_body", "lie_length", "long_body"]


@attrs.define
class FaultRule:
    """What every rule has: how often it may fire, what it aims at, how often it fired."""

    times: int | None = 1
    artifact: str | None = None
    backup_id: uuid.UUID | None = None
    fired: int = 0
    label: str = attrs.field(default="", repr=False)  # the builder call that made it

    @property
    def used_up(self) -> bool:
        """True once the rule fired as many times as it may."""
        return self.times is not None and self.fired >= self.times

    def matches(self, backup_id: uuid.UUID, artifact: str) -> bool:
        """Whether the rule applies to a storage request for this artifact."""
        if self.used_up:
            return False
        if self.artifact is not None and self.artifact != artifact:
            return False
        return self.backup_id is None or self.backup_id == backup_id

    def fire(self) -> None:
        """Count one use."""
        self.fired += 1

    def __str__(self) -> str:
        limit = "every time" if self.times is None else f"times={self.times}"
        return f"{self.label or type(self).__name__} [{limit}, fired {self.fired}]"


@attrs.define
class StreamFault(FaultRule):
    """A fault in the body of a storage response, at an absolute byte offset."""

    kind: StreamKind = "drop"
    offset: int = 0
    seconds: float | None = None  # stall length; None = until release_stalls()
    amount: int = 1  # short_body / lie_length / long_body: bytes missing or extra


@attrs.define
class StorageStatusFault(FaultRule):
    """A fault in the status line of a storage response."""

    status: int = 503
    retry_after: float | None = None
    redirect: bool = False
    wrong_range: bool = False
    ignore_range: bool = False


@attrs.define
class APIFault(FaultRule):
    """An API request answered other than the platform would."""

    status: int = 503
    shape: ErrorShape | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    retry_after_http_date: bool = False
    retry_after_in_body: bool = False
    path_contains: str | None = None
    method: str | None = None
    raw_body: bytes | None = None  # send exactly this body (hostile-input tests)
    content_type: str | None = None
    disconnect: Literal["before", "after"] | None = None  # hang up before/after acting
    redirect_to: str | None = None  # answer 3xx to this URL ("" : the same URL again)

    def matches_request(self, method: str, path: str) -> bool:
        """Whether the rule applies to this API request."""
        if self.used_up:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path_contains is None or self.path_contains in path


@attrs.define
class BackupFault(FaultRule):
    """A backup taken on demand that will not complete."""

    environment_id: uuid.UUID | None = None
    status: Literal["failed", "cancelled"] = "failed"
    error_message: str = "pg_dump exited with code 1"
    at_percent: int = 50  # how far it gets before it ends

    def matches_environment(self, env_id: uuid.UUID) -> bool:
        """Whether the rule applies to a backup of this environment."""
        return not self.used_up and self.environment_id in (None, env_id)


class FaultRules:
    """The rules as the request handlers read them (the simulator's private half)."""

    def __init__(self) -> None:
        self.stream: list[StreamFault] = []
        self.storage: list[StorageStatusFault] = []
        self.api: list[APIFault] = []
        self.backup: list[BackupFault] = []
        self._order: list[FaultRule] = []
        self._stall_release = asyncio.Event()

    def add(self, rule: FaultRule) -> None:
        """Install a rule."""
        if isinstance(rule, StreamFault):
            self.stream.append(rule)
        elif isinstance(rule, StorageStatusFault):
            self.storage.append(rule)
        elif isinstance(rule, APIFault):
            self.api.append(rule)
        elif isinstance(rule, BackupFault):
            self.backup.append(rule)
        self._order.append(rule)

    def all(self) -> list[FaultRule]:
        """Every rule, in the order added."""
        return list(self._order)

    def clear(self) -> None:
        """Forget every rule and let any stalled response go on."""
        self.stream.clear()
        self.storage.clear()
        self.api.clear()
        self.backup.clear()
        self._order.clear()
        self.release_stalls()

    def api_rule(self, method: str, path: str) -> APIFault | None:
        """The first live API rule for this request, if any."""
        return next((r for r in self.api if r.matches_request(method, path)), None)

    def backup_rule(self, env_id: uuid.UUID) -> BackupFault | None:
        """The first live rule for a new backup of this environment, if any."""
        return next((r for r in self.backup if r.matches_environment(env_id)), None)

    def storage_rules(self, backup_id: uuid.UUID, artifact: str) -> list[StorageStatusFault]:
        """Live status-line rules for this object."""
        return [r for r in self.storage if r.matches(backup_id, artifact)]

    def stream_rules(self, backup_id: uuid.UUID, artifact: str) -> list[StreamFault]:
        """Live body rules for this object."""
        return [r for r in self.stream if r.matches(backup_id, artifact)]

    def release_stalls(self) -> None:
        """Wake every stalled response."""
        self._stall_release.set()
        self._stall_release = asyncio.Event()

    async def wait_released(self, seconds: float | None) -> None:
        """Sleep until :meth:`release_stalls` (or ``seconds``, when given)."""
        event = self._stall_release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


def _check_times(times: int | None) -> None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ConfigurationError(f"times must be a positive whole number or None, got {times!r}")


def _label(name: str, *args: object, **kwargs: object) -> str:
    shown = [repr(a) for a in args]
    shown += [f"{k}={v!r}" for k, v in kwargs.items() if v is not None and k != "times"]
    return f"{name}({', '.join(shown)})"


class Faults:
    """The switchboard. Every builder returns the rule it added, to inspect ``.fired``.

    ::

        rule = sim.faults.drop_after(100_000)          # the dump's connection drops once
        ...
        assert rule.fired == 1
        sim.faults.assert_all_fired()                  # or: assert not sim.faults.unfired()
    """

    def __init__(self, rules: FaultRules) -> None:
        self._rules = rules

    def _add(self, rule: FaultRule, label: str) -> None:
        _check_times(rule.times)
        rule.label = label
        self._rules.add(rule)

    # -- did they fire? ------------------------------------------------------------------

    @property
    def rules(self) -> list[FaultRule]:
        """Every rule installed (and not cleared), in the order added."""
        return self._rules.all()

    def unfired(self) -> list[FaultRule]:
        """The rules that never fired once."""
        return [rule for rule in self._rules.all() if rule.fired == 0]

    def assert_all_fired(self) -> None:
        """Fail with a readable list if any installed rule never fired.

        Raises:
            AssertionError: naming each rule that never fired (the builder call that
                made it).
        """
        idle = self.unfired()
        if idle:
            lines = "\n".join(f"  - {rule}" for rule in idle)
            raise AssertionError(f"{len(idle)} simulator fault(s) never fired:\n{lines}")

    def clear(self) -> None:
        """Remove every rule (and release any stalled response)."""
        self._rules.clear()

    def release_stalls(self) -> None:
        """Let every response stalled by :meth:`stall_after` go on (or end)."""
        self._rules.release_stalls()

    # -- storage: the body of a transfer -----------------------------------------------

    def _stream(self, label: str, kind: StreamKind, offset: int, **fields: object) -> StreamFault:
        rule = StreamFault(kind=kind, offset=offset, **fields)  # type: ignore[arg-type]
        self._add(rule, label)
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
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._stream(_label("drop_after", offset, **where), "drop", offset, **where)

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
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        label = _label("stall_after", offset, seconds=seconds, **where)
        return self._stream(label, "stall", offset, seconds=seconds, **where)

    def corrupt(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """Flip the byte at ``offset`` as it is sent (``times=None``: on every transfer)."""
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._stream(_label("corrupt", offset, **where), "corrupt", offset, **where)

    def expire_after(
        self,
        offset: int,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """At ``offset``, every URL issued so far expires and the connection drops."""
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._stream(_label("expire_after", offset, **where), "expire", offset, **where)

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
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        label = _label("short_body", missing, **where)
        return self._stream(label, "short_body", 0, amount=missing, **where)

    def lie_content_length(
        self,
        extra: int = 1024,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StreamFault:
        """Announce ``extra`` more bytes than are sent, then close the connection."""
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        label = _label("lie_content_length", extra, **where)
        return self._stream(label, "lie_length", 0, amount=extra, **where)

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
        where = {"artifact": artifact, "backup_id": backup_id, "times": times}
        label = _label("long_body", extra, **where)
        return self._stream(label, "long_body", 0, amount=extra, **where)

    # -- storage: the status line ------------------------------------------------------

    def _storage(self, label: str, **fields: object) -> StorageStatusFault:
        rule = StorageStatusFault(**fields)  # type: ignore[arg-type]
        self._add(rule, label)
        return rule

    def storage_errors(
        self,
        status: int = 503,
        *,
        times: int | None = 1,
        artifact: str | None = None,
        backup_id: uuid.UUID | None = None,
        retry_after: float | None = None,
    ) -> StorageStatusFault:
        """Answer the next ``times`` storage requests with ``status`` (an S3 XML error,
        with ``Retry-After`` when given)."""
        fields = {"artifact": artifact, "backup_id": backup_id, "times": times}
        label = _label("storage_errors", status, retry_after=retry_after, **fields)
        return self._storage(label, status=status, retry_after=retry_after, **fields)

    def ignore_range(
        self,
        *,
        artifact: str | None = None,
        backup_id: uuid.UUID | None = None,
        times: int | None = None,
    ) -> StorageStatusFault:
        """Answer ranged requests with 200 and the whole object (as some Ceph setups do)."""
        fields = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._storage(_label("ignore_range", **fields), ignore_range=True, **fields)

    def wrong_content_range(
        self,
        *,
        artifact: str | None = "database",
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StorageStatusFault:
        """Answer a ranged request with 206 and a Content-Range that starts elsewhere."""
        fields = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._storage(_label("wrong_content_range", **fields), wrong_range=True, **fields)

    def redirect_storage(
        self,
        *,
        artifact: str | None = None,
        backup_id: uuid.UUID | None = None,
        times: int | None = 1,
    ) -> StorageStatusFault:
        """Answer with 307 to the same object on the simulator's other storage origin."""
        fields = {"artifact": artifact, "backup_id": backup_id, "times": times}
        return self._storage(_label("redirect_storage", **fields), redirect=True, **fields)

    # -- API -----------------------------------------------------------------------------

    def _api(
        self,
        builder: str,
        shown: dict[str, object],
        *,
        path_contains: str | None,
        method: str | None,
        times: int | None,
        **fields: object,
    ) -> APIFault:
        """Add an API rule; its label shows ``shown`` and where it aims."""
        where = {"path_contains": path_contains, "method": method, "times": times}
        positional = shown.pop("", None)
        label = _label(builder, *([positional] if positional is not None else []), **shown, **where)
        rule = APIFault(**where, **fields)  # type: ignore[arg-type]
        self._add(rule, label)
        return rule

    def api_errors(
        self,
        status: int = 503,
        *,
        times: int | None = 1,
        shape: ErrorShape | None = None,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> APIFault:
        """Answer the next ``times`` API requests (whose path contains ``path_contains``,
        and whose method is ``method``, when given) with ``status``, in the given
        error-body shape, before the request has any effect."""
        fields = {"shape": shape, "code": code, "message": message, "retry_after": retry_after}
        return self._api(
            "api_errors",
            {"": status, **fields},
            path_contains=path_contains,
            method=method,
            times=times,
            status=status,
            **fields,
        )

    def rate_limit(
        self,
        *,
        times: int | None = 1,
        retry_after: float = 1,
        code: str = "rate_limit_exceeded",
        http_date: bool = False,
        in_body: bool = False,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> APIFault:
        """429 for the next ``times`` API requests, before they have any effect;
        ``Retry-After`` as seconds, as an HTTP date (``http_date``), or only in the body
        (``in_body``)."""
        shown = {
            "retry_after": retry_after,
            "code": code,
            "http_date": http_date or None,
            "in_body": in_body or None,
        }
        return self._api(
            "rate_limit",
            shown,
            path_contains=path_contains,
            method=method,
            times=times,
            status=429,
            code=code,
            message="Too many requests",
            retry_after=retry_after,
            retry_after_http_date=http_date,
            retry_after_in_body=in_body,
        )

    def api_raw(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        times: int | None = 1,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> APIFault:
        """Answer with exactly ``body`` (HTML pages, truncated JSON, missing fields...)."""
        return self._api(
            "api_raw",
            {"": body[:40], "status": status},
            path_contains=path_contains,
            method=method,
            times=times,
            status=status,
            raw_body=body,
            content_type=content_type,
        )

    def api_disconnect(
        self,
        *,
        after_acting: bool = True,
        path_contains: str | None = None,
        method: str | None = None,
        times: int | None = 1,
    ) -> APIFault:
        """Close the connection without any answer: after the request took effect
        (``after_acting``: e.g. the POST created its backup), or before it did. A client
        cannot tell the two apart, so it must never resend a POST that may have acted."""
        return self._api(
            "api_disconnect",
            {"after_acting": after_acting},
            path_contains=path_contains,
            method=method,
            times=times,
            disconnect="after" if after_acting else "before",
        )

    def api_redirect(
        self,
        location: str = "",
        *,
        status: int = 307,
        path_contains: str | None = None,
        method: str | None = None,
        times: int | None = 1,
    ) -> APIFault:
        """Answer with a redirect to ``location`` (default: the same URL again), which
        the public API never does; each hop a client follows is a request of its own."""
        if not 300 <= status < 400:
            raise ConfigurationError(f"api_redirect: {status} is not a 3xx status")
        return self._api(
            "api_redirect",
            {"": location or None, "status": status},
            path_contains=path_contains,
            method=method,
            times=times,
            status=status,
            redirect_to=location,
        )

    # -- backups taken on demand ---------------------------------------------------------

    def backup_fails(
        self,
        *,
        environment_id: uuid.UUID | None = None,
        status: Literal["failed", "cancelled"] = "failed",
        error_message: str = "pg_dump exited with code 1",
        at_percent: int = 50,
        times: int | None = 1,
    ) -> BackupFault:
        """The next ``times`` backups taken on demand (of ``environment_id``, when given)
        end ``failed`` (or ``cancelled``) once they are ``at_percent`` through their run,
        with ``error_message`` on the backup and its task."""
        if status not in ("failed", "cancelled"):
            raise ConfigurationError(
                f"backup_fails: status must be failed or cancelled, not {status!r}"
            )
        if (
            isinstance(at_percent, bool)
            or not isinstance(at_percent, int)
            or not 0 <= at_percent <= 99
        ):
            raise ConfigurationError(f"backup_fails: at_percent must be 0..99, got {at_percent!r}")
        label = _label(
            "backup_fails",
            environment_id=environment_id,
            status=status,
            at_percent=at_percent,
            times=times,
        )
        rule = BackupFault(
            times=times,
            environment_id=environment_id,
            status=status,
            error_message=error_message,
            at_percent=at_percent,
        )
        self._add(rule, label)
        return rule
