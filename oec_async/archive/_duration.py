"""Durations as people write them on a command line: ``26h``, ``7d``, ``90m``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

from oec_async.errors import ConfigurationError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+[smhdw])+$")
_MAX_SECONDS = 100 * 366 * 86400  # a century: anything longer is a typo


def parse_duration(text: str) -> timedelta:
    """``"26h"`` -> 26 hours. Units ``s``, ``m`` (minutes), ``h``, ``d``, ``w``; parts add
    up (``"1d12h"``). Unlike restic's ``--keep-within``, ``m`` means minutes, not months.

    Raises:
        ConfigurationError: not a positive duration in that form (a bare number has no
            unit and is refused rather than guessed).
    """
    value = text.strip().lower()
    if not _WHOLE.match(value):
        raise ConfigurationError(
            f"{text!r} is not a duration: use a number and a unit, s m h d or w (e.g. 26h, 7d)"
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(value))
    if not 0 < seconds <= _MAX_SECONDS:
        raise ConfigurationError(f"{text!r} is not a positive duration of at most 100 years")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """``timedelta(hours=30)`` -> ``"1d6h"``: the two largest units (an age in a message,
    not a measurement)."""
    seconds = int(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or (parts and len(parts) < 2):
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return sign + ("".join(p for p in parts if not p.startswith("0")) or "0s")
