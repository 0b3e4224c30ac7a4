"""The one cattrs converter: tolerant where the platform varies, strict where it must be."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import cattrs
import pytest

from oec_async import Backup, BackupPage, BackupStatus, BackupType, DownloadURLs
from oec_async._convert import describe_error, structure, unstructure

BACKUP_ID = uuid.UUID("6f1c2b4e-8a7d-4c3b-9e2f-1a2b3c4d5e6f")
ENV_ID = uuid.UUID("0b7e3f1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b")
SIGNATURE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def backup_json(**overrides: Any) -> dict[str, Any]:
    """A backup as the API documents it (section 1), with ``overrides`` applied."""
    body: dict[str, Any] = {
        "id": str(BACKUP_ID),
        "environment_id": str(ENV_ID),
        "status": "completed",
        "backup_type": "scheduled",
        "database_size": 432198144,
        "filestore_size": 211345920,
        "total_size": 643544064,
        "compressed_size": None,
        "started_at": "2026-05-22T18:00:00Z",
        "completed_at": "2026-05-22T18:04:32Z",
        "duration_seconds": 272,
        "expires_at": "2026-06-21T18:00:00Z",
        "is_verified": True,
        "verified_at": "2026-05-22T18:05:01Z",
        "notes": None,
        "created_at": "2026-05-22T18:00:00Z",
    }
    body.update(overrides)
    return body


def page_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [backup_json()],
        "total": 45,
        "page": 1,
        "page_size": 20,
        "total_pages": 3,
    }
    body.update(overrides)
    return body


def presigned(name: str) -> str:
    return (
        f"https://storage.example.com/bucket/{ENV_ID}/{BACKUP_ID}/{name}"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260522"
        f"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}"
    )


def urls_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "backup_id": str(BACKUP_ID),
        "database_url": presigned("dump.sql"),
        "filestore_url": presigned("filestore.tar.gz"),
        "manifest_url": presigned("manifest.json"),
        "expires_in": 3600,
        "expires_at": "2026-05-22T19:04:32Z",
        "use_streaming": False,
    }
    body.update(overrides)
    return body


# -- timestamps ----------------------------------------------------------------------------


def test_z_suffix_timestamp_is_aware_utc() -> None:
    backup = structure(backup_json(completed_at="2026-05-22T18:04:32Z"), Backup)

    assert backup.completed_at == datetime(2026, 5, 22, 18, 4, 32, tzinfo=UTC)
    assert backup.completed_at.utcoffset() == timedelta(0)


def test_naive_timestamp_is_read_as_utc_not_local_time() -> None:
    backup = structure(backup_json(created_at="2026-05-22T18:00:00"), Backup)

    assert backup.created_at is not None
    assert backup.created_at.tzinfo is not None
    assert backup.created_at == datetime(2026, 5, 22, 18, 0, 0, tzinfo=UTC)


def test_offset_timestamp_keeps_its_instant() -> None:
    backup = structure(backup_json(started_at="2026-05-22T20:00:00+02:00"), Backup)

    assert backup.started_at is not None
    assert backup.started_at.utcoffset() == timedelta(hours=2)
    assert backup.started_at == datetime(2026, 5, 22, 18, 0, 0, tzinfo=UTC)


def test_fractional_seconds_timestamp_is_parsed() -> None:
    backup = structure(backup_json(verified_at="2026-05-22T18:05:01.250000Z"), Backup)

    assert backup.verified_at == datetime(2026, 5, 22, 18, 5, 1, 250000, tzinfo=UTC)


def test_every_timestamp_field_is_aware() -> None:
    backup = structure(backup_json(), Backup)

    stamps = [
        backup.started_at,
        backup.completed_at,
        backup.expires_at,
        backup.verified_at,
        backup.created_at,
    ]
    assert all(stamp is not None and stamp.tzinfo is not None for stamp in stamps)


def test_unparseable_timestamp_is_an_error_naming_the_field() -> None:
    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(backup_json(created_at="yesterday at noon"), Backup)

    assert "created_at" in describe_error(caught.value)


# -- ids, optional fields, unknown keys ----------------------------------------------------


def test_ids_are_uuid_objects() -> None:
    backup = structure(backup_json(), Backup)

    assert backup.id == BACKUP_ID
    assert isinstance(backup.id, uuid.UUID)
    assert isinstance(backup.environment_id, uuid.UUID)


def test_malformed_id_is_an_error_naming_the_field() -> None:
    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(backup_json(id="not-a-uuid"), Backup)

    assert "$.id" in describe_error(caught.value)


def test_optional_fields_may_be_null_or_absent() -> None:
    minimal = {"id": str(BACKUP_ID), "environment_id": str(ENV_ID), "status": "running"}

    backup = structure(minimal, Backup)
    nulls = structure(
        backup_json(database_size=None, completed_at=None, backup_type=None, notes=None), Backup
    )

    assert backup.database_size is None
    assert backup.completed_at is None
    assert backup.backup_type is None
    assert backup.environment_snapshot is None
    assert backup.is_verified is False
    assert nulls.database_size is None
    assert nulls.completed_at is None
    assert nulls.backup_type is None


def test_sometimes_present_fields_are_read() -> None:
    backup = structure(
        backup_json(
            status="failed",
            error_message="pg_dump exited with code 1",
            task_id="task-00042",
            retention_type="daily",
            environment_snapshot={"odoo_version": "17.0"},
        ),
        Backup,
    )

    assert backup.error_message == "pg_dump exited with code 1"
    assert backup.task_id == "task-00042"
    assert backup.retention_type == "daily"
    assert backup.environment_snapshot == {"odoo_version": "17.0"}


def test_sizes_are_ints() -> None:
    backup = structure(backup_json(), Backup)

    assert backup.database_size == 432198144
    assert isinstance(backup.database_size, int)
    assert isinstance(backup.total_size, int)


def test_unknown_json_keys_are_ignored() -> None:
    body = backup_json(storage_region="eu-west-3", new_feature={"nested": [1, 2]})

    assert structure(body, Backup) == structure(backup_json(), Backup)
    page = structure(page_json(next_cursor="abc", links={"next": "/x"}), BackupPage)
    assert page.total == 45


def test_missing_required_field_gives_a_readable_error() -> None:
    body = backup_json()
    del body["id"]

    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(body, Backup)

    message = describe_error(caught.value)
    assert "required field missing" in message
    assert "$.id" in message


def test_missing_field_inside_a_page_names_its_position() -> None:
    broken = backup_json()
    del broken["status"]

    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(page_json(items=[backup_json(), broken]), BackupPage)

    assert "$.items[1].status" in describe_error(caught.value)


def test_page_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a JSON object"):
        structure([backup_json()], BackupPage)


# -- enums: known values become members, unknown ones stay strings -------------------------


@pytest.mark.parametrize("status", list(BackupStatus))
def test_known_status_becomes_enum_member(status: BackupStatus) -> None:
    backup = structure(backup_json(status=status.value), Backup)

    assert backup.status is status


@pytest.mark.parametrize("backup_type", list(BackupType))
def test_known_backup_type_becomes_enum_member(backup_type: BackupType) -> None:
    backup = structure(backup_json(backup_type=backup_type.value), Backup)

    assert backup.backup_type is backup_type


def test_unknown_status_is_kept_as_string() -> None:
    backup = structure(backup_json(status="archived_cold"), Backup)

    assert backup.status == "archived_cold"
    assert not isinstance(backup.status, BackupStatus)
    assert not backup.is_completed


def test_unknown_backup_type_is_kept_as_string() -> None:
    backup = structure(backup_json(backup_type="archived_cold"), Backup)

    assert backup.backup_type == "archived_cold"
    assert not isinstance(backup.backup_type, BackupType)


def test_page_with_unknown_enum_values_still_lists() -> None:
    items = [
        backup_json(status="archived_cold", backup_type="pre_migrate"),
        backup_json(id=str(uuid.uuid4()), status="completed"),
    ]

    page = structure(page_json(items=items), BackupPage)

    assert [b.status for b in page.items] == ["archived_cold", BackupStatus.COMPLETED]
    assert page.items[0].backup_type == "pre_migrate"


def test_status_of_wrong_json_type_is_an_error() -> None:
    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(backup_json(status=5), Backup)

    assert "$.status" in describe_error(caught.value)


# -- booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), (1, True), (0, False)],
)
def test_booleans_are_read_by_value(raw: object, expected: bool) -> None:
    backup = structure(backup_json(is_verified=raw), Backup)

    assert backup.is_verified is expected


@pytest.mark.parametrize("raw", ["no", "verified", 2, [], {}])
def test_boolean_that_is_no_boolean_is_an_error(raw: object) -> None:
    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(backup_json(is_verified=raw), Backup)

    assert "$.is_verified" in describe_error(caught.value)


# -- pages ---------------------------------------------------------------------------------


def test_page_reads_total_pages() -> None:
    page = structure(page_json(), BackupPage)

    assert (page.total, page.page, page.page_size, page.total_pages) == (45, 1, 20, 3)
    assert page.has_next


def test_page_accepts_pages_for_total_pages() -> None:
    body = page_json(total=45, page_size=20)
    del body["total_pages"]
    body["pages"] = 4  # not what total / page_size gives: proves "pages" itself is read

    page = structure(body, BackupPage)

    assert page.total_pages == 4


def test_total_pages_wins_over_pages_when_both_are_sent() -> None:
    page = structure(page_json(total_pages=3, pages=99), BackupPage)

    assert page.total_pages == 3


@pytest.mark.parametrize(
    ("total", "page_size", "expected"), [(45, 20, 3), (40, 20, 2), (1, 100, 1)]
)
def test_total_pages_is_computed_when_neither_is_sent(
    total: int, page_size: int, expected: int
) -> None:
    body = page_json(total=total, page_size=page_size)
    del body["total_pages"]

    assert structure(body, BackupPage).total_pages == expected


def test_last_page_has_no_next() -> None:
    page = structure(page_json(page=3), BackupPage)

    assert not page.has_next


# -- download URLs: secrets until they expire ----------------------------------------------


def test_download_urls_are_read_in_full() -> None:
    urls = structure(urls_json(), DownloadURLs)

    assert urls.backup_id == BACKUP_ID
    assert urls.database_url == presigned("dump.sql")
    assert urls.expires_in == 3600
    assert urls.expires_at == datetime(2026, 5, 22, 19, 4, 32, tzinfo=UTC)


def test_download_urls_repr_and_str_hide_query_strings() -> None:
    urls = structure(urls_json(), DownloadURLs)

    for shown in (repr(urls), str(urls), f"{urls}", f"{urls!r}"):
        assert SIGNATURE not in shown
        assert "X-Amz-Signature" not in shown
        assert "X-Amz-Credential" not in shown
        assert "AKIAEXAMPLE" not in shown
        assert f"/bucket/{ENV_ID}/{BACKUP_ID}/dump.sql" in shown
        assert "storage.example.com" in shown


def test_download_urls_may_all_be_null() -> None:
    urls = structure(
        urls_json(database_url=None, filestore_url=None, manifest_url=None), DownloadURLs
    )

    assert urls.database_url is None
    assert urls.filestore_url is None
    assert urls.manifest_url is None
    assert "filestore_url=None" in repr(urls)


def test_download_urls_without_backup_id_is_an_error() -> None:
    body = urls_json()
    del body["backup_id"]

    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(body, DownloadURLs)

    message = describe_error(caught.value)
    assert "$.backup_id" in message
    assert SIGNATURE not in message


# -- writing models back -------------------------------------------------------------------


def test_backup_round_trips_through_unstructure() -> None:
    backup = structure(
        backup_json(status="archived_cold", environment_snapshot={"odoo_version": "17.0"}),
        Backup,
    )

    data = unstructure(backup)

    assert data["id"] == str(BACKUP_ID)
    assert data["status"] == "archived_cold"
    assert data["backup_type"] == "scheduled"
    assert isinstance(data["completed_at"], str)
    assert structure(data, Backup) == backup


def test_page_round_trips_through_unstructure() -> None:
    page = structure(page_json(), BackupPage)

    assert structure(unstructure(page), BackupPage) == page


def test_download_urls_round_trip_keeps_the_full_urls() -> None:
    urls = structure(urls_json(filestore_url=None), DownloadURLs)

    data = unstructure(urls)

    assert data["database_url"] == presigned("dump.sql")
    assert structure(data, DownloadURLs) == urls


def test_unstructured_timestamps_keep_their_offset() -> None:
    tz = timezone(timedelta(hours=-5))
    backup = structure(backup_json(started_at="2026-05-22T13:00:00-05:00"), Backup)

    data = unstructure(backup)

    assert data["started_at"] == datetime(2026, 5, 22, 13, 0, tzinfo=tz).isoformat()
