"""What the command line's arguments mean: each ``type=`` of the parser, a pure function
from the text typed to a value, or :class:`argparse.ArgumentTypeError` saying what is
wrong (argparse turns it into a usage error naming the flag).

Nothing here imports the client, the downloader or rich: ``oec-backups --help`` builds
the whole parser from this module and :mod:`._parser` alone. The archive's duration and
retention-count parsers are imported when an argument is actually parsed.
"""

from __future__ import annotations

import argparse
import math
import re
import uuid
from typing import Any

import attrs

__all__ = [
    "Shard",
    "duration",
    "environment_id",
    "expires_in",
    "non_negative_int",
    "non_negative_seconds",
    "parse_size",
    "positive_int",
    "retention_count",
    "seconds",
    "shard",
    "size",
]

MIN_EXPIRES_IN, MAX_EXPIRES_IN = 300, 86400  # API.md section 1; checked again by the SDK

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
#: ``K``/``KiB`` 1024, ``KB`` 1000 (as ``dd`` reads them), and so on up to ``T``.
_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgt", start=1):
    _UNITS |= {_letter: 1024**_power, f"{_letter}ib": 1024**_power, f"{_letter}b": 1000**_power}


def parse_size(text: str) -> int:
    """A byte count from ``"512"``, ``"10G"``, ``"512MiB"``, ``"1.5GiB"`` or ``"2GB"``.

    ``K``, ``M``, ``G``, ``T`` and ``KiB``, ``MiB``... are binary (1024); ``KB``,
    ``MB``... are decimal (1000), as ``dd`` reads them; ``B`` or nothing is bytes.

    Raises:
        ValueError: not a size (the message gives examples).
    """
    match = _SIZE.match(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"not a size: {text!r} (examples: 1048576, 512MiB, 10G, 2GB)")
    value = float(match.group(1)) * unit
    if unit == 1 and value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def size(text: str) -> int:
    """``type=`` of a size option (``--min-free-space 10G``)."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _integer(text: str, minimum: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
    return number


def positive_int(text: str) -> int:
    """``type=`` of a count of at least 1."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """``type=`` of a count of at least 0."""
    return _integer(text, 0)


def _seconds(text: str, *, allow_zero: bool) -> float:
    bound = ">= 0" if allow_zero else "> 0"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"must be a number of seconds {bound}, got {text!r}")
    return value


def seconds(text: str) -> float:
    """``type=`` of a number of seconds (> 0)."""
    return _seconds(text, allow_zero=False)


def non_negative_seconds(text: str) -> float:
    """``type=`` of a number of seconds (>= 0)."""
    return _seconds(text, allow_zero=True)


def expires_in(text: str) -> int:
    """``type=`` of ``--expires-in``: whole seconds, 300 to 86400."""
    number = _integer(text, 1)
    if not MIN_EXPIRES_IN <= number <= MAX_EXPIRES_IN:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds, got {number}"
        )
    return number


def environment_id(text: str) -> uuid.UUID:
    """``type=`` of an id option (``--project``, ``--exclude``): a UUID."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        shown = repr(text) if len(text) <= 64 else "a long string"
        raise argparse.ArgumentTypeError(f"must be a UUID, got {shown}") from None


@attrs.frozen
class Shard:
    """``--shard K/N``: this process is shard ``index`` of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard(text: str) -> Shard:
    """``type=`` of ``--shard K/N`` (0 <= K < N), e.g. ``"$JOB_COMPLETION_INDEX/8"``."""
    index, slash, count = text.partition("/")
    try:
        if not slash:
            raise ValueError
        parsed = Shard(int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be K/N with whole numbers, e.g. 0/4, got {text!r}"
        ) from None
    if parsed.count < 1 or not 0 <= parsed.index < parsed.count:
        raise argparse.ArgumentTypeError(f"must be K/N with 0 <= K < N, got {text!r}")
    return parsed


def duration(text: str) -> Any:
    """``type=`` of a duration (``26h``, ``7d``, ``1d12h``): a ``timedelta``."""
    from oec_async.archive import parse_duration  # noqa: PLC0415 - not for --help
    from oec_async.errors import ConfigurationError  # noqa: PLC0415

    try:
        return parse_duration(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def retention_count(text: str) -> int:
    """``type=`` of ``--keep-* N``: a count (1 or more) or ``unlimited``. 0 is refused:
    it would keep nothing by that rule, which is what leaving the option out means (and
    ``pull --keep-last 0`` alone would silently prune nothing)."""
    if text.strip().lower() == "unlimited":
        from oec_async.archive import UNLIMITED  # noqa: PLC0415 - not for --help

        return UNLIMITED
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 1:
        raise argparse.ArgumentTypeError(
            "must be a count (1 or more) or 'unlimited'; leave the option out to keep "
            "nothing by this rule"
        )
    return number
