"""The client a command talks through, from its connection options: the key (argument,
file or environment), the base URL, timeouts and pacing.

With ``--shard K/N`` every process of the fleet may share one key, and the platform's
budget is the key's, not the process's: each paces at a 1/N share of the default reads
and writes (never below 1 a window) unless ``--requests-per-minute`` /
``--writes-per-minute`` say otherwise (shards holding keys of their own give each
process a whole budget that way).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from oec_async.cli._parser import DEFAULT_READS_PER_MINUTE, DEFAULT_WRITES_PER_MINUTE
from oec_async.errors import ConfigurationError

if TYPE_CHECKING:
    from oec_async._client import OECClient

__all__ = ["make_client", "pace", "read_key_file"]

_MAX_KEY_FILE = 4096


def read_key_file(path: Path) -> str:
    """The key in ``path`` (a mounted secret): its one line, surrounding blanks removed.

    Raises:
        ConfigurationError: unreadable, empty, or more than one line; the message names
            the file, never what is in it.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"--api-key-file {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigurationError(f"--api-key-file {path}: too large to hold an API key")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"--api-key-file {path}: not an API key (not ASCII)") from None
    if not text:
        raise ConfigurationError(f"--api-key-file {path} is empty")
    if "\n" in text:
        raise ConfigurationError(f"--api-key-file {path}: more than one line")
    return text


def _api_key(args: argparse.Namespace) -> str | None:
    key_file: Path | None = args.api_key_file
    if key_file is not None and args.api_key is not None:
        raise ConfigurationError("give --api-key or --api-key-file, not both")
    if key_file is not None:
        return read_key_file(key_file)
    return args.api_key  # type: ignore[no-any-return]  # None: the client reads OEC_API_KEY


def pace(given: int | None, default: int, shards: int) -> int | None:
    """A budget per window: ``given`` as is (0: no pacing), else a ``1/shards`` share of
    ``default``, at least 1."""
    if given is not None:
        return given or None
    return max(1, default // shards)


def make_client(args: argparse.Namespace) -> OECClient:
    """The :class:`OECClient` of a command's connection options.

    Raises:
        ConfigurationError: a bad key, key file or base URL (before any request).
    """
    from oec_async._client import OECClient  # noqa: PLC0415 - aiohttp, not for --help

    shard = getattr(args, "shard", None)
    shards = shard.count if shard is not None else 1
    return OECClient(
        api_key=_api_key(args),
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.retries,
        requests_per_minute=pace(args.requests_per_minute, DEFAULT_READS_PER_MINUTE, shards),
        writes_per_minute=pace(args.writes_per_minute, DEFAULT_WRITES_PER_MINUTE, shards),
        rate_limit_period=args.rate_window,
        # A budget given as a number is the process's own (shards with keys of their
        # own); only the default is a share of one key's.
        budget_share=1 / shards if args.requests_per_minute is None else 1.0,
        max_connections=args.max_connections,
        max_connections_per_host=args.max_connections_per_host,
    )
