"""``SimulatorSettings``: every steady-state switch of the simulator, in one frozen object.

Faults (``sim.faults``) are one-off events that fire and get used up; settings describe
how the platform behaves until changed. Pass them at construction
(``OECSimulator(settings=SimulatorSettings(url_ttl=2))``) or change them on a running
simulator with ``sim.configure(url_ttl=2)``; both check every name and value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

from oec_async.errors import ConfigurationError
from oec_async.testing._entities import SimBackup
from oec_async.testing._errors import ERROR_SHAPES, ErrorShape

__all__ = ["SimulatorSettings", "URLSigner"]

#: ``(backup, artifact, ttl_seconds) -> url``: presigns with another storage (a real S3).
URLSigner = Callable[[SimBackup, str, float], str]
_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _optional_positive(kind: type[int] | type[float]) -> _Validator:
    accepted: tuple[type[int] | type[float], ...] = (int,) if kind is int else (int, float)
    what = "a positive whole number" if kind is int else "a positive number"

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, accepted) or value <= 0:
            raise ConfigurationError(
                f"simulator setting {attribute.name}: expected {what} or None, got {value!r}"
            )

    return check


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(
            f"simulator setting {attribute.name}: expected a positive number, got {value!r}"
        )


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(
            f"simulator setting {attribute.name}: expected a number >= 0, got {value!r}"
        )


def _one_of(*choices: object) -> _Validator:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise ConfigurationError(
                f"simulator setting {attribute.name}: {value!r} is not one of {shown}"
            )

    return check


def _boolean(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"simulator setting {attribute.name}: expected True or False, got {value!r}"
        )


def _optional_text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(
            f"simulator setting {attribute.name}: expected a string or None, got {value!r}"
        )


def _optional_callable(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise ConfigurationError(
            f"simulator setting {attribute.name}: expected a callable or None, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class SimulatorSettings:
    """How the simulated platform behaves. Every field has the platform's default.

    Rate limits (API.md section 1), per key, per calendar window:
        read_limit: GETs one key may make per window (None: unlimited).
        write_limit: POSTs one key may make per window (None: unlimited).
        rate_window: the window's length in seconds: a calendar minute by default (the
            window is ``floor(unix_time / rate_window)``); shorten it so rate-limit tests
            run fast.
        shared_budget: as older API versions did, count a read-write key's reads
            against its write budget too.
        rate_limit_headers: a 429 carries ``Retry-After``, ``X-RateLimit-*`` and a body
            ``retry_after``; False: no header at all, as current API versions send.
        rate_headers_on_success: successful answers carry ``X-RateLimit-Limit``,
            ``-Remaining`` and ``-Reset`` for the budget they counted against.
        ip_block_after: refused keys (401s) from one address within one window that
            block the address (None: never).
        ip_block_seconds: how long a blocked address gets 429 ``ip_blocked``.

    API answers:
        error_shape: force every API error body into one of the four shapes (None: the
            shape the platform uses for each status).
        pages_key: ``"total_pages"``, or ``"pages"`` as some deployments send.
        subscription_blocked: every authenticated request gets 402.
        active_environments_only: environment lists leave out environments that are
            stopped, paused, in error or of an unknown status (as some API versions do).

    Backups on demand (API.md section 10), in simulated time:
        clock_speed: simulated seconds per real second (0: the clock moves only by
            ``sim.advance(seconds)`` and ``poll_advance``).
        poll_advance: simulated seconds each ``GET /deployments/{id}`` or
            ``GET /backups/{id}`` moves the clock on before answering (steps per poll).
        backup_queue_seconds: how long a new backup stays ``pending``.
        backup_run_seconds: how long it is then ``in_progress`` before it ends.

    Storage and presigned URLs:
        url_ttl: the lifetime (seconds) of every URL issued, whatever ``expires_in``
            asked for (None: as asked).
        bandwidth: bytes per second per storage response (None: as fast as possible).
        expiry_style: how an expired URL is refused: ``"s3"`` (403 AccessDenied) or
            ``"gcs"`` (400 ExpiredToken).
        storage_public_url: the origin put in presigned URLs instead of the simulator's
            own storage (e.g. an nginx serving the same folder).
        url_signer: presign with this function instead (``(backup, artifact, ttl) ->
            url``), e.g. against a real S3 server the test filled.
    """

    read_limit: int | None = attrs.field(default=120, validator=_optional_positive(int))
    write_limit: int | None = attrs.field(default=20, validator=_optional_positive(int))
    rate_window: float = attrs.field(default=60.0, validator=_positive)
    shared_budget: bool = attrs.field(default=False, validator=_boolean)
    rate_limit_headers: bool = attrs.field(default=True, validator=_boolean)
    rate_headers_on_success: bool = attrs.field(default=True, validator=_boolean)
    ip_block_after: int | None = attrs.field(default=10, validator=_optional_positive(int))
    ip_block_seconds: float = attrs.field(default=900.0, validator=_positive)
    error_shape: ErrorShape | None = attrs.field(
        default=None, validator=_one_of(None, *ERROR_SHAPES)
    )
    pages_key: Literal["total_pages", "pages"] = attrs.field(
        default="total_pages", validator=_one_of("total_pages", "pages")
    )
    subscription_blocked: bool = attrs.field(default=False, validator=_boolean)
    active_environments_only: bool = attrs.field(default=False, validator=_boolean)
    clock_speed: float = attrs.field(default=1.0, validator=_not_negative)
    poll_advance: float = attrs.field(default=0.0, validator=_not_negative)
    backup_queue_seconds: float = attrs.field(default=2.0, validator=_not_negative)
    backup_run_seconds: float = attrs.field(default=10.0, validator=_not_negative)
    url_ttl: float | None = attrs.field(default=None, validator=_optional_positive(float))
    bandwidth: float | None = attrs.field(default=None, validator=_optional_positive(float))
    expiry_style: Literal["s3", "gcs"] = attrs.field(default="s3", validator=_one_of("s3", "gcs"))
    storage_public_url: str | None = attrs.field(default=None, validator=_optional_text)
    url_signer: URLSigner | None = attrs.field(default=None, validator=_optional_callable, eq=False)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name."""
        return tuple(a.name for a in attrs.fields(cls))

    @classmethod
    def build(cls, **values: Any) -> SimulatorSettings:
        """Settings from keyword arguments, refusing unknown names with the known ones.

        Raises:
            ConfigurationError: an unknown name or a bad value.
        """
        _refuse_unknown(values)
        return cls(**values)

    def replace(self, **changes: Any) -> SimulatorSettings:
        """A copy with ``changes`` applied (names and values checked as in :meth:`build`).

        Raises:
            ConfigurationError: an unknown name or a bad value.
        """
        _refuse_unknown(changes)
        return attrs.evolve(self, **changes)


def _refuse_unknown(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(SimulatorSettings.names()))
    if unknown:
        raise ConfigurationError(
            f"unknown simulator setting(s): {', '.join(unknown)}; "
            f"known: {', '.join(SimulatorSettings.names())}"
        )
