"""What a download accepts: :class:`DownloadOptions`, checked when it is made.

Every field is validated for its type and range at construction, so a bad value fails at
once with a :class:`~oec_async.errors.ConfigurationError` naming the option, before any
request is sent (never as a bare ``TypeError`` deep inside a transfer, or after the whole
dump was downloaded).
"""

from __future__ import annotations

import math
from typing import Any, cast

import attrs

from oec_async._config import check_expires_in
from oec_async.errors import ConfigurationError

__all__ = ["DownloadOptions", "SegmentPolicy"]


def _number(*, integer: bool, minimum: float, strictly: bool = False) -> Any:
    """An attrs validator: an int (or, unless ``integer``, a float) at least ``minimum``."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    what = "an integer" if integer else "a number"
    bound = f"> {minimum:g}" if strictly else f">= {minimum:g}"

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ConfigurationError(
                f"{attribute.name} must be {what} {bound}, got {type(value).__name__} {value!r}"
            )
        number = float(cast(float, value))
        if not math.isfinite(number):  # NaN, infinities
            raise ConfigurationError(f"{attribute.name} must be a finite number, got {value!r}")
        if number < minimum or (strictly and number == minimum):
            raise ConfigurationError(f"{attribute.name} must be {bound}, got {value!r}")

    return check


def _boolean(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # "no" is a true string: a flag must be a real bool, or a typo flips it.
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{attribute.name} must be True or False, got {type(value).__name__} {value!r}"
        )


def _expires_in(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_expires_in(value)


@attrs.frozen
class SegmentPolicy:
    """When one file goes over several connections, and how many (derived from
    :class:`DownloadOptions`)."""

    connections: int = 4
    threshold: int = 64 * 1024 * 1024  # files smaller than this use one stream
    min_size: int = 8 * 1024 * 1024  # never split a range below this
    #: Split only while one connection brings less than this (bytes/s): a fast link is
    #: limited by the CPU, which more connections would only load further.
    grow_below: float = 128 * 1024 * 1024
    #: Seconds of one stream measured before deciding (0: split at once, like aria2 -x).
    probe: float = 0.15


@attrs.frozen(kw_only=True)
class DownloadOptions:
    """How a backup is downloaded. Every field has a default that suits a cron job.

    Args:
        expires_in: lifetime asked for the presigned URLs (300..86400 s); they are renewed
            anyway when they run out.
        strict: an artifact the manifest gives no checksum for (or no manifest at all) is
            an :class:`~oec_async.errors.IntegrityError` instead of ``verified=False`` —
            for a fresh download and for one already on disk alike.
        reverify: re-hash the files of an already complete download instead of trusting
            the completion record; a file that no longer matches is reported (a warning
            and a ``"repair"`` progress event) and fetched again.
        min_free_space: bytes to keep free on the destination's disk.
        lock_timeout: seconds to wait for another process downloading the same backup
            (0: fail at once with :class:`~oec_async.errors.DownloadLockedError`).
        retries: consecutive failed attempts (no byte received) before a transfer gives
            up; any byte received resets the count.
        buffer_size: bytes gathered before each write (and hash) in a worker thread.
        url_refresh_margin: renew URLs this many seconds before they expire.
        segments: connections for one large file (1: never split). A file of at least
            ``segment_threshold`` bytes from storage that advertises ranges starts as one
            stream; when, after ``segment_probe`` seconds, one connection brings less
            than ``segment_below`` bytes/s, the rest is split over ``segments``
            connections (ranges never below ``min_segment_size``). ``segment_probe=0``
            splits at once.

    Raises:
        ConfigurationError: a value of the wrong type or out of range.
    """

    expires_in: int = attrs.field(default=3600, validator=_expires_in)
    strict: bool = attrs.field(default=False, validator=_boolean)
    reverify: bool = attrs.field(default=False, validator=_boolean)
    min_free_space: int = attrs.field(default=0, validator=_number(integer=True, minimum=0))
    lock_timeout: float = attrs.field(default=0.0, validator=_number(integer=False, minimum=0))
    retries: int = attrs.field(default=5, validator=_number(integer=True, minimum=0))
    buffer_size: int = attrs.field(default=1024 * 1024, validator=_number(integer=True, minimum=1))
    url_refresh_margin: float = attrs.field(
        default=60.0, validator=_number(integer=False, minimum=0)
    )
    segments: int = attrs.field(default=4, validator=_number(integer=True, minimum=1))
    segment_threshold: int = attrs.field(
        default=64 * 1024 * 1024, validator=_number(integer=True, minimum=0)
    )
    min_segment_size: int = attrs.field(
        default=8 * 1024 * 1024, validator=_number(integer=True, minimum=1)
    )
    segment_below: float = attrs.field(
        default=128 * 1024 * 1024, validator=_number(integer=False, minimum=0)
    )
    segment_probe: float = attrs.field(default=0.15, validator=_number(integer=False, minimum=0))

    def with_overrides(self, overrides: dict[str, Any]) -> DownloadOptions:
        """A copy with the given fields changed (unknown names refused)."""
        if not overrides:
            return self
        known = {a.name for a in attrs.fields(DownloadOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(f"unknown download option(s): {', '.join(unknown)}")
        return attrs.evolve(self, **overrides)

    @property
    def segment_policy(self) -> SegmentPolicy:
        """The segmentation rules these options describe."""
        return SegmentPolicy(
            connections=self.segments,
            threshold=self.segment_threshold,
            min_size=self.min_segment_size,
            grow_below=self.segment_below,
            probe=self.segment_probe,
        )
