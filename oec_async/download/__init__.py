"""Streaming, resumable, verified downloads of backups (one, or many environments').

What a download accepts is in :mod:`.options`, what it returns in :mod:`.results`, its
progress events in :mod:`.progress`, and the manifest parser in :mod:`.manifest`. The
downloader needs from the API only what :class:`BackupSource` describes
(:class:`~oec_async.OECClient` is one).
"""

from oec_async.download._source import BackupSource, StorageSettings
from oec_async.download.backup import download_backup
from oec_async.download.bulk import pull_latest
from oec_async.download.manifest import Manifest, ManifestEntry, parse_manifest
from oec_async.download.options import DownloadOptions
from oec_async.download.progress import EventKind, ProgressCallback, ProgressEvent
from oec_async.download.results import (
    BackupDownload,
    BatchProgress,
    DownloadedFile,
    Evidence,
    PullResult,
    PullStatus,
)

__all__ = [
    "BackupDownload",
    "BackupSource",
    "BatchProgress",
    "DownloadOptions",
    "DownloadedFile",
    "EventKind",
    "Evidence",
    "Manifest",
    "ManifestEntry",
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "PullStatus",
    "StorageSettings",
    "download_backup",
    "parse_manifest",
    "pull_latest",
]
