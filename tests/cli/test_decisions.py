"""The command line's pure decisions, without a process: what an argument means, how a
shard paces itself, which exit status a failure gives, how an SDK message is shown."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import pytest

from oec_async.cli._argtypes import Shard, parse_size, shard
from oec_async.cli._connect import pace
from oec_async.cli._exit import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_RETRYABLE,
    EXIT_USAGE,
    exit_status_for,
    kind_of,
    worst,
)
from oec_async.cli._messages import cli_message
from oec_async.cli._select import apply_selection, parse_id_lines
from oec_async.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    ConfigurationError,
    ConflictError,
    DownloadLockedError,
    InsufficientSpaceError,
    IntegrityError,
    NoCompletedBackupError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StorageError,
    WaitTimeoutError,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("512", 512),
        ("512B", 512),
        ("1K", 1024),
        ("1KiB", 1024),
        ("1kb", 1000),
        ("10G", 10 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2GB", 2 * 10**9),
        (" 3 T ", 3 * 1024**4),
    ],
)
def test_sizes_accept_binary_and_decimal_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1", "10 parsecs", "1.5", "1e9", "10XB"])
def test_a_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|whole number"):
        parse_size(text)


def test_a_shard_is_k_of_n_with_k_below_n() -> None:
    assert shard("0/1") == Shard(0, 1)
    assert shard("7/8") == Shard(7, 8)
    for bad in ("8/8", "-1/4", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(argparse.ArgumentTypeError):
            shard(bad)


def test_a_shard_paces_at_its_share_of_the_budget_unless_told() -> None:
    assert pace(None, 100, 1) == 100
    assert pace(None, 100, 4) == 25
    assert pace(None, 15, 4) == 3
    assert pace(None, 15, 40) == 1  # never below one request a window
    assert pace(60, 100, 4) == 60  # --requests-per-minute wins
    assert pace(0, 100, 4) is None  # 0: no pacing


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (APIConnectionError("reset"), "retryable"),
        (APITimeoutError("slow"), "retryable"),
        (ServerError("down", status=503), "retryable"),
        (RateLimitError("slow down", status=429), "retryable"),
        (ConflictError("running", status=409), "retryable"),
        (DownloadLockedError("held"), "retryable"),
        (WaitTimeoutError("still running", backup=None), "retryable"),
        (StorageError("503s", status=503), "retryable"),
        (StorageError("gone", status=404), "permanent"),
        (AuthenticationError("bad key", status=401), "refused"),
        (PaymentRequiredError("blocked", status=402), "refused"),
        (PermissionDeniedError("read-only key", status=403), "refused"),
        (NotFoundError("no such", status=404), "permanent"),
        (IntegrityError("sha256 differs"), "permanent"),
        (InsufficientSpaceError("full"), "permanent"),
        (NoCompletedBackupError(uuid.uuid4()), "permanent"),
        (ConfigurationError("bad flag"), "usage"),
        (OSError("disk"), "permanent"),
    ],
)
def test_each_failure_is_retryable_refused_or_permanent(error: Exception, kind: str) -> None:
    assert kind_of(error) == kind


def test_a_retryable_failure_makes_the_run_retryable_then_refused_then_permanent() -> None:
    integrity, refused = IntegrityError("x"), AuthenticationError("k", status=401)
    flaky = ServerError("down", status=502)
    assert exit_status_for([]) == EXIT_OK
    assert exit_status_for([integrity]) == EXIT_FAILED
    assert exit_status_for([integrity, refused]) == EXIT_REFUSED
    assert exit_status_for([integrity, refused, flaky]) == EXIT_RETRYABLE
    assert worst(EXIT_OK, EXIT_FAILED, EXIT_USAGE) == EXIT_USAGE
    assert worst(EXIT_RETRYABLE, EXIT_INTERRUPTED) == EXIT_INTERRUPTED


def test_backup_failures_are_permanent() -> None:
    from oec_async.models import Backup

    backup = Backup(id=uuid.uuid4(), environment_id=uuid.uuid4(), status="failed")
    assert kind_of(BackupFailedError("failed", backup=backup)) == "permanent"


@pytest.mark.parametrize(
    ("sdk", "cli"),
    [
        (
            "no API key: pass api_key= or set OEC_API_KEY",
            "no API key: set OEC_API_KEY, or give --api-key-file FILE (or --api-key)",
        ),
        (
            "123 is already downloading this backup into /x (wait for it, or pass "
            "lock_timeout= to wait here)",
            "123 is already downloading this backup into /x (wait for it, or give "
            "--lock-timeout to wait here)",
        ),
        (
            "database: the manifest has no checksum for this file and strict=True; kept",
            "database: the manifest has no checksum for this file and --strict; kept",
        ),
        (
            "needs 1.0 GiB more on disk, 10.0 MiB available in /x after keeping 10.0 GiB free",
            "needs 1.0 GiB more on disk, 10.0 MiB available in /x after keeping 10.0 GiB free"
            " (--min-free-space)",
        ),
        ("min_free_space must be an integer >= 0", "--min-free-space must be an integer >= 0"),
        ("concurrency must be an integer >= 1", "--concurrency must be an integer >= 1"),
        # Words that merely look like a parameter stay as they are.
        ("a connect timeout after 5 retries", "a connect timeout after 5 retries"),
        ("strict mode", "strict mode"),
    ],
)
def test_sdk_messages_name_the_flags_on_the_command_line(sdk: str, cli: str) -> None:
    assert cli_message(sdk) == cli


def test_id_lines_skip_comments_and_blanks_and_name_the_bad_line() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    assert parse_id_lines([f"# x {uuid.uuid4()}", "", f" {one} # prod", str(two)], "f") == [
        one,
        two,
    ]
    with pytest.raises(ConfigurationError, match=r"--from-file f:2: 'nope' is not"):
        parse_id_lines([str(one), "nope"], "f")


def test_the_selection_is_a_union_in_order_then_exclusions_then_the_shard() -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 60)]
    assert apply_selection([ids[0], ids[1], ids[0], ids[2]], [ids[1]], None) == [ids[0], ids[2]]
    shards = [apply_selection(ids, [], Shard(k, 3)) for k in range(3)]
    assert sorted(env for share in shards for env in share) == sorted(ids)


@pytest.mark.parametrize(
    ("flags", "share", "reads"),
    [
        ([], 0.25, 25),  # one key shared by four shards: a quarter of it, learnt limits too
        (["--requests-per-minute", "100"], 1.0, 100),  # a key of its own: the whole of it
    ],
)
def test_a_shard_takes_a_share_of_the_keys_budget_only_when_it_shares_the_key(
    flags: list[str], share: float, reads: int, tmp_path: Path
) -> None:
    from oec_async.cli._connect import make_client
    from oec_async.cli._parser import build_parser

    key = "oec_live_ro_" + "x" * 24
    args = build_parser().parse_args(
        ["pull", "--all", "--shard", "1/4", "--dest", str(tmp_path), "--api-key", key, *flags]
    )
    client = make_client(args)
    assert client.pacer.reads is not None
    assert (client.pacer.reads.share, client.pacer.reads.limit) == (share, reads)
