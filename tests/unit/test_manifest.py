"""The manifest parser on its own: every tolerated shape, and every hostile one refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from oec_async import ManifestError
from oec_async.download.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest

DUMP = b"-- PostgreSQL database dump\n"
FILESTORE = b"\x1f\x8b fake tar.gz"
SHA_DUMP = hashlib.sha256(DUMP).hexdigest()
SHA_FILESTORE = hashlib.sha256(FILESTORE).hexdigest()
BACKUP_ID = uuid.UUID("6f1c2a4e-0d7b-4c8e-9a51-3b2d1e0f9a77")
ENV_ID = uuid.UUID("0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b")


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def parse(doc: Any) -> Manifest:
    return parse_manifest(encode(doc))


def canonical(**database: Any) -> dict[str, Any]:
    entry = {"filename": "dump.sql", "size": len(DUMP), "sha256": SHA_DUMP, **database}
    return {
        "format_version": 1,
        "backup_id": str(BACKUP_ID),
        "environment_id": str(ENV_ID),
        "files": {
            "database": entry,
            "filestore": {
                "filename": "filestore.tar.gz",
                "size": len(FILESTORE),
                "sha256": SHA_FILESTORE,
            },
        },
    }


def only_database(entry: dict[str, Any]) -> dict[str, Any]:
    return {"files": {"database": entry}}


# -- shapes that are read ------------------------------------------------------------------


def test_canonical_manifest_gives_both_artifacts_by_kind_and_by_name() -> None:
    manifest = parse(canonical())

    assert manifest.backup_id == BACKUP_ID
    assert manifest.environment_id == ENV_ID
    database = manifest.by_kind["database"]
    assert (database.name, database.size, database.algorithm, database.digest) == (
        "dump.sql",
        len(DUMP),
        "sha256",
        SHA_DUMP,
    )
    assert manifest.by_kind["filestore"].digest == SHA_FILESTORE
    assert manifest.by_name["dump.sql"] is database
    assert manifest.by_name["filestore.tar.gz"] is manifest.by_kind["filestore"]


@pytest.mark.parametrize("key", ["database", "db", "dump", "DB"])
def test_database_is_found_under_every_known_kind_key(key: str) -> None:
    doc = {"files": {key: {"filename": "dump.sql", "size": 5, "sha256": SHA_DUMP}}}

    manifest = parse(doc)

    assert manifest.by_kind["database"].digest == SHA_DUMP


@pytest.mark.parametrize(
    ("name_key", "size_key", "checksum"),
    [
        ("name", "bytes", {"checksum": f"sha256:{SHA_DUMP}"}),
        ("path", "size", {"sha256": SHA_DUMP}),
        ("filename", "size_bytes", {"checksum": SHA_DUMP}),
        ("file", "size", {"checksum": f"SHA-256:{SHA_DUMP.upper()}"}),
    ],
)
def test_files_as_a_list_is_read_by_name(
    name_key: str, size_key: str, checksum: dict[str, str]
) -> None:
    doc = {"files": [{name_key: "dump.sql", size_key: 28, **checksum}]}

    manifest = parse(doc)

    entry = manifest.by_name["dump.sql"]
    assert (entry.size, entry.algorithm, entry.digest) == (28, "sha256", SHA_DUMP)
    assert manifest.by_kind == {}


def test_files_list_entry_with_a_kind_is_also_found_by_kind() -> None:
    doc = {"files": [{"name": "odoo.sql", "kind": "db", "size": 28, "sha256": SHA_DUMP}]}

    manifest = parse(doc)

    assert manifest.by_kind["database"] is manifest.by_name["odoo.sql"]


@pytest.mark.parametrize("value", [f"sha256:{SHA_DUMP}", SHA_DUMP])
def test_top_level_checksums_map_completes_entries_without_checksum(value: str) -> None:
    doc = {
        "files": {"database": {"filename": "dump.sql", "size": 28}},
        "checksums": {"dump.sql": value},
    }

    manifest = parse(doc)

    entry = manifest.by_kind["database"]
    assert (entry.size, entry.algorithm, entry.digest) == (28, "sha256", SHA_DUMP)


def test_checksums_map_alone_gives_entries_by_name_without_size() -> None:
    doc = {"checksums": {"dump.sql": f"sha256:{SHA_DUMP}", "filestore.tar.gz": SHA_FILESTORE}}

    manifest = parse(doc)

    assert manifest.by_name["dump.sql"].digest == SHA_DUMP
    assert manifest.by_name["dump.sql"].size is None
    assert manifest.by_name["filestore.tar.gz"].algorithm == "sha256"


def test_checksums_map_also_completes_a_files_list() -> None:
    doc = {"files": [{"name": "dump.sql", "size": 28}], "checksums": {"dump.sql": SHA_DUMP}}

    manifest = parse(doc)

    assert manifest.by_name["dump.sql"].digest == SHA_DUMP
    assert manifest.by_name["dump.sql"].size == 28


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha1", "md5"])
def test_checksum_prefixes_name_the_algorithm(algorithm: str) -> None:
    digest = hashlib.new(algorithm, DUMP).hexdigest()

    manifest = parse(only_database({"filename": "dump.sql", "checksum": f"{algorithm}:{digest}"}))

    entry = manifest.by_kind["database"]
    assert (entry.algorithm, entry.digest) == (algorithm, digest)


@pytest.mark.parametrize("algorithm", ["sha512", "md5"])
def test_algorithm_named_as_a_key_is_read(algorithm: str) -> None:
    digest = hashlib.new(algorithm, DUMP).hexdigest()

    manifest = parse(only_database({"filename": "dump.sql", algorithm: digest}))

    assert manifest.by_kind["database"].algorithm == algorithm


def test_bare_hex_is_sha256_and_digests_are_lower_cased() -> None:
    manifest = parse(only_database({"filename": "dump.sql", "checksum": SHA_DUMP.upper()}))

    entry = manifest.by_kind["database"]
    assert (entry.algorithm, entry.digest) == ("sha256", SHA_DUMP)


def test_entry_without_checksum_has_no_algorithm() -> None:
    manifest = parse(only_database({"filename": "dump.sql", "size": 28}))

    entry = manifest.by_kind["database"]
    assert (entry.algorithm, entry.digest, entry.size) == (None, None, 28)


def test_entry_for_prefers_kind_then_file_name_then_default_name() -> None:
    by_kind = parse(canonical())
    by_name = parse({"files": [{"name": "odoo.sql", "sha256": SHA_DUMP}]})
    by_default = parse({"files": [{"name": "dump.sql", "sha256": SHA_DUMP}]})

    assert by_kind.entry_for("database", "anything.sql", "dump.sql") is by_kind.by_kind["database"]
    assert by_name.entry_for("database", "odoo.sql", "dump.sql") is by_name.by_name["odoo.sql"]
    assert (
        by_default.entry_for("database", "odoo.sql", "dump.sql") is (by_default.by_name["dump.sql"])
    )
    assert by_name.entry_for("filestore", "filestore.tar.gz", "filestore.tar.gz") is None


def test_a_relative_sub_path_is_matched_by_its_base_name() -> None:
    manifest = parse({"files": [{"path": "backup/2026/dump.sql", "sha256": SHA_DUMP}]})

    assert manifest.by_name["dump.sql"].digest == SHA_DUMP


def test_manifest_without_ids_or_files_is_empty_but_valid() -> None:
    manifest = parse({"format_version": 1})

    assert (manifest.backup_id, manifest.environment_id) == (None, None)
    assert manifest.by_kind == manifest.by_name == {}


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../evil.sql",
        "backup/../../evil.sql",
        "..",
        "/etc/evil.sql",
        "/dump.sql",
        "~/evil.sql",
        "dump\x00.sql",
        "..\\..\\evil.sql",
        "dir\\dump.sql",
        "a" * 256,
        "é" * 128,  # 256 bytes in UTF-8
        ".",
        "",
    ],
)
@pytest.mark.parametrize("shape", ["files_map", "files_list", "checksums_map"])
def test_names_leaving_the_backup_folder_or_not_plain_are_refused(name: str, shape: str) -> None:
    if shape == "files_map":
        doc: dict[str, Any] = only_database({"filename": name, "sha256": SHA_DUMP})
    elif shape == "files_list":
        doc = {"files": [{"name": name, "sha256": SHA_DUMP}]}
    else:
        doc = {"checksums": {name: SHA_DUMP}}

    with pytest.raises(ManifestError) as caught:
        parse(doc)

    assert caught.value.artifact == "manifest"


def test_a_255_byte_name_is_still_accepted() -> None:
    name = "d" * 251 + ".sql"

    manifest = parse({"files": [{"name": name, "sha256": SHA_DUMP}]})

    assert name in manifest.by_name


@pytest.mark.parametrize(
    "size", [-1, 2**60, 10**30, "28", 28.0, 1.5, True, [28], {"value": 28}, float("nan")]
)
@pytest.mark.parametrize("key", ["size", "bytes"])
def test_negative_absurd_or_non_integer_sizes_are_refused(size: Any, key: str) -> None:
    with pytest.raises(ManifestError):
        parse(only_database({"filename": "dump.sql", key: size}))


def test_size_zero_is_accepted() -> None:
    assert parse(only_database({"filename": "empty.sql", "size": 0})).by_kind["database"].size == 0


@pytest.mark.parametrize(
    "checksum",
    [
        f"crc32:{SHA_DUMP[:8]}",
        f"blake3:{SHA_DUMP}",
        f"sha3_256:{SHA_DUMP}",
        f"rot13:{SHA_DUMP}",
    ],
)
def test_unknown_checksum_algorithm_is_refused(checksum: str) -> None:
    with pytest.raises(ManifestError, match="algorithm"):
        parse(only_database({"filename": "dump.sql", "checksum": checksum}))


@pytest.mark.parametrize(
    "checksum",
    [
        SHA_DUMP[:-1],  # too short
        SHA_DUMP + "0",  # too long
        "z" * 64,  # not hex
        f"sha256:{SHA_DUMP[:40]}",  # a sha1-length digest called sha256
        f"md5:{SHA_DUMP}",  # a sha256-length digest called md5
        f"sha256: {SHA_DUMP}",
        "sha256:",
        "   ",
        12345,
        ["sha256", SHA_DUMP],
    ],
)
def test_malformed_checksums_are_refused(checksum: Any) -> None:
    with pytest.raises(ManifestError):
        parse(only_database({"filename": "dump.sql", "checksum": checksum}))


@pytest.mark.parametrize(
    "digest",
    [SHA_DUMP[:63], "g" * 64, 42],
)
def test_malformed_digest_under_an_algorithm_key_is_refused(digest: Any) -> None:
    with pytest.raises(ManifestError):
        parse(only_database({"filename": "dump.sql", "sha256": digest}))


def test_malformed_checksum_in_the_checksums_map_is_refused() -> None:
    with pytest.raises(ManifestError):
        parse({"checksums": {"dump.sql": "sha256:nothex"}})


@pytest.mark.parametrize(
    "doc",
    [
        {
            "files": {
                "database": {"filename": "dump.sql", "sha256": SHA_DUMP},
                "db": {"filename": "other.sql", "sha256": SHA_DUMP},
            }
        },
        {"files": [{"name": "dump.sql", "size": 1}, {"name": "dump.sql", "size": 2}]},
        {"files": [{"name": "dump.sql", "size": 1}, {"path": "sub/dump.sql", "size": 2}]},
        {
            "files": [
                {"name": "a.sql", "kind": "database", "size": 1},
                {"name": "b.sql", "kind": "dump", "size": 2},
            ]
        },
        {
            "files": {
                "database": {"filename": "dump.sql", "size": 1},
                "filestore": {"filename": "dump.sql", "size": 2},
            }
        },
    ],
    ids=["kind_twice", "name_twice", "same_base_name", "kind_twice_in_list", "name_in_two_kinds"],
)
def test_duplicate_entries_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ManifestError, match="duplicate"):
        parse(doc)


@pytest.mark.parametrize(
    "data",
    [b"[]", b'["dump.sql"]', b'"manifest"', b"42", b"null", b"true"],
)
def test_a_manifest_that_is_not_a_json_object_is_refused(data: bytes) -> None:
    with pytest.raises(ManifestError, match="not a JSON object"):
        parse_manifest(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b'{"format_version": 1, "files": {"database": ',
        b"{'single': 'quotes'}",
        b"\xff\xfe{}",
        b"<html>502 Bad Gateway</html>",
    ],
)
def test_invalid_json_or_encoding_is_refused(data: bytes) -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(data)


def test_deeply_nested_json_is_refused_as_a_manifest_error() -> None:
    depth = 100_000
    data = b'{"files": ' + b"[" * depth + b"]" * depth + b"}"

    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_oversized_manifest_is_refused_before_parsing() -> None:
    padding = " " * MAX_MANIFEST_BYTES
    data = encode(canonical())[:-1] + f', "notes": "{padding}"}}'.encode()

    with pytest.raises(ManifestError, match="larger than"):
        parse_manifest(data)


@pytest.mark.parametrize(
    "doc",
    [
        {"files": "dump.sql"},
        {"files": 3},
        {"files": {"database": "dump.sql"}},
        {"files": [["dump.sql", 28]]},
        {"files": [{"size": 28, "sha256": SHA_DUMP}]},
        {"checksums": ["dump.sql", SHA_DUMP]},
        {"checksums": "sha256:" + SHA_DUMP},
    ],
    ids=[
        "files_string",
        "files_number",
        "entry_string",
        "list_entry_list",
        "list_entry_unnamed",
        "checksums_list",
        "checksums_string",
    ],
)
def test_wrongly_typed_structures_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ManifestError):
        parse(doc)


@pytest.mark.parametrize("field", ["backup_id", "environment_id"])
def test_ids_that_are_not_uuids_are_refused(field: str) -> None:
    doc = canonical()
    doc[field] = "../../etc"

    with pytest.raises(ManifestError, match=field):
        parse(doc)
