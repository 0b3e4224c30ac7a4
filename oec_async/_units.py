"""Byte counts as people read them (messages and the command line share this)."""

from __future__ import annotations

__all__ = ["format_size"]


def format_size(size: int) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units, one decimal above bytes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
