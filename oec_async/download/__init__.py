"""Streaming, resumable, verified downloads of backups (one, or many environments')."""

from oec_async.download.backup import (
    BackupDownload,
    DownloadedFile,
    DownloadOptions,
    download_backup,
)
from oec_async.download.bulk import BatchProgress, PullResult, pull_latest
from oec_async.download.manifest import Manifest, ManifestEntry, parse_manifest
from oec_async.download.progress import EventKind, ProgressCallback, ProgressEvent

__all__ = [
    "BackupDownload",
    "BatchProgress",
    "DownloadOptions",
    "DownloadedFile",
    "EventKind",
    "Manifest",
    "ManifestEntry",
    "ProgressCallback",
    "ProgressEvent",
    "PullResult",
    "download_backup",
    "parse_manifest",
    "pull_latest",
]
