"""Error text as the command line shows it: secrets redacted, and the SDK's Python
argument names (``lock_timeout=``, ``strict=True``, ``api_key=``) given as the flags a
command-line user types (``--lock-timeout``, ``--strict``, ``--api-key``).

The SDK's messages are written for Python callers; this is the one place that rewrites
them, at the CLI boundary, for every error line, table cell and ``--json`` message.
"""

from __future__ import annotations

import re

__all__ = ["FLAG_OF", "cli_message", "error_text"]

#: Python argument (of ``OECClient`` or ``DownloadOptions``) -> the flag that sets it.
FLAG_OF = {
    "api_key": "--api-key",
    "base_url": "--base-url",
    "lock_timeout": "--lock-timeout",
    "strict": "--strict",
    "reverify": "--reverify",
    "min_free_space": "--min-free-space",
    "max_retries": "--retries",
    "retries": "--transfer-retries",
    "timeout": "--request-timeout",
    "requests_per_minute": "--requests-per-minute",
    "writes_per_minute": "--writes-per-minute",
    "rate_limit_period": "--rate-window",
    "max_connections": "--max-connections",
    "max_connections_per_host": "--max-connections-per-host",
    "concurrency": "--concurrency",
    "expires_in": "--expires-in",
    "segments": "--segments",
    "segment_threshold": "--segment-threshold",
    "notes": "--notes",
    "retention_type": "--retention",
}

_WHOLE: list[tuple[re.Pattern[str], str]] = [
    # "no API key: pass api_key= or set OEC_API_KEY"
    (
        re.compile(r"pass api_key= or set OEC_API_KEY"),
        "set OEC_API_KEY, or give --api-key-file FILE (or --api-key)",
    ),
    # "... after keeping 10.0 GiB free; ..." (the reserve of --min-free-space)
    (re.compile(r"(after keeping \S+ \S+ free)"), r"\1 (--min-free-space)"),
]
_NAMES = "|".join(sorted(map(re.escape, FLAG_OF), key=len, reverse=True))
# "lock_timeout=", "strict=True", "pass lock_timeout= to wait", "concurrency must be ..."
_ASSIGNED = re.compile(rf"\b({_NAMES})=(?:True|False)?(?![\w'\"])")
_MUST = re.compile(rf"(?<![\w.-])({_NAMES}) must be\b")
_PASS = re.compile(r"\bpass (--[a-z-]+)")


def cli_message(text: str) -> str:
    """``text`` with Python argument names replaced by the flags that set them."""
    for pattern, replacement in _WHOLE:
        text = pattern.sub(replacement, text)
    text = _ASSIGNED.sub(lambda m: FLAG_OF[m.group(1)], text)
    text = _MUST.sub(lambda m: f"{FLAG_OF[m.group(1)]} must be", text)
    return _PASS.sub(r"give \1", text)


def error_text(error: BaseException) -> str:
    """An error as the command line prints it: redacted, in flag names."""
    from oec_async._redact import redact_text  # noqa: PLC0415 - light, but not for --help

    return cli_message(redact_text(str(error)))
