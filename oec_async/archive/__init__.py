"""Caring for the local archive: verify, status, retention, prune, ``latest``, monitoring.

Offline (no key, no network: only :class:`Pinger` talks to anything) and confined to the
path given: symbolic links under it are never followed, folders that are not the
downloader's are never touched. The work is blocking file-system work; from async code
run it with ``asyncio.to_thread``::

    from oec_async.archive import RetentionPolicy, archive_status, prune, verify_archive

    bad = [r for r in verify_archive("backups/") if not r.ok]
    for env in archive_status("backups/"):
        print(env.environment_id, env.newest_verified and env.newest_verified.created_at)
    prune("backups/", RetentionPolicy(last=3, daily=7, weekly=4, monthly=6))
"""

from oec_async.archive._duration import format_duration, parse_duration
from oec_async.archive._inventory import (
    BackupFolder,
    EnvironmentSummary,
    archive_status,
    inventory,
)
from oec_async.archive._latest import LATEST_NAME, read_latest, update_latest
from oec_async.archive._metrics import (
    EnvironmentMetrics,
    RunMetrics,
    render_metrics,
    write_json_report,
    write_metrics,
)
from oec_async.archive._ping import Pinger, redact_url
from oec_async.archive._prune import PruneAction, PruneResult, prune, prune_environment
from oec_async.archive._retention import (
    UNLIMITED,
    RetentionDecision,
    RetentionPolicy,
    plan_retention,
)
from oec_async.archive._verify import VerifyResult, iter_verify, verify_archive, verify_folder

__all__ = [
    "LATEST_NAME",
    "UNLIMITED",
    "BackupFolder",
    "EnvironmentMetrics",
    "EnvironmentSummary",
    "Pinger",
    "PruneAction",
    "PruneResult",
    "RetentionDecision",
    "RetentionPolicy",
    "RunMetrics",
    "VerifyResult",
    "archive_status",
    "format_duration",
    "inventory",
    "iter_verify",
    "parse_duration",
    "plan_retention",
    "prune",
    "prune_environment",
    "read_latest",
    "redact_url",
    "render_metrics",
    "update_latest",
    "verify_archive",
    "verify_folder",
    "write_json_report",
    "write_metrics",
]
