"""A partial file and its sidecar, read back as hostile input on real files: what
``PartialFile.save`` wrote loads back as it was; anything else (no sidecar, a garbled or
truncated one, wrong types, format 1, ranges that do not tile the file, a ``.part``
longer than the object, a ``.part`` that is not a regular file) loads as "no partial",
with nothing left on disk, never as a crash. The offset loaded never exceeds the bytes
really on disk.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oec_async.download._folder import Folder
from oec_async.download._partial import (
    ObjectIdentity,
    PartialFile,
    PartialState,
    SegmentState,
)

SIZE = 4096
ETAG = '"abc"'
DATE = "Wed, 21 Oct 2025 07:28:00 GMT"
IDENTITY = ObjectIdentity(ETAG, DATE, SIZE)
NOTHING = PartialState(0, None)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Folder]:
    with Folder(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY), tmp_path) as opened:
        yield opened


@pytest.fixture
def partial(folder: Folder) -> PartialFile:
    return PartialFile(folder, "dump.sql")


def part_path(partial: PartialFile) -> Path:
    return partial.folder.path / partial.part


def sidecar_path(partial: PartialFile) -> Path:
    return partial.folder.path / partial.sidecar


def sidecar(**fields: Any) -> dict[str, Any]:
    """A sidecar as ``save`` writes it for ``IDENTITY``, with ``fields`` changed."""
    return {
        "version": 2,
        "etag": ETAG,
        "last_modified": DATE,
        "size": SIZE,
        "segments": None,
    } | fields


def on_disk(partial: PartialFile, length: int, raw: Any) -> None:
    part_path(partial).write_bytes(b"x" * length)
    text = raw if isinstance(raw, str | bytes) else json.dumps(raw)
    data = text.encode() if isinstance(text, str) else text
    sidecar_path(partial).write_bytes(data)


def assert_discarded(partial: PartialFile) -> None:
    assert partial.load() == NOTHING
    assert not part_path(partial).exists()
    assert not sidecar_path(partial).exists()


# -- what was saved loads back -----------------------------------------------------------


def test_a_plain_partial_resumes_from_its_length_of_the_object_saved(
    partial: PartialFile,
) -> None:
    partial.save(IDENTITY)
    part_path(partial).write_bytes(b"x" * 1000)

    assert partial.load() == PartialState(1000, IDENTITY)


def test_a_segmented_partial_round_trips_its_ranges(partial: PartialFile) -> None:
    ranges: SegmentState = [(0, 1024, 1000), (1024, 3072, 1024), (3072, SIZE, 4000)]
    partial.save(IDENTITY, ranges)
    part_path(partial).write_bytes(b"\0" * SIZE)  # preallocated to full length

    state = partial.load()

    assert state == PartialState(1000 + 0 + 928, IDENTITY, ranges)
    assert not state.complete  # all ranges filled would still not make it "complete"


def test_a_partial_holding_the_whole_object_is_complete(partial: PartialFile) -> None:
    partial.save(IDENTITY)
    part_path(partial).write_bytes(b"x" * SIZE)

    state = partial.load()

    assert state.offset == SIZE
    assert state.complete


def test_the_sidecar_is_written_atomically_and_privately(partial: PartialFile) -> None:
    partial.save(IDENTITY)

    assert json.loads(sidecar_path(partial).read_text()) == sidecar()
    assert oct(sidecar_path(partial).stat().st_mode & 0o777) == oct(0o600)
    assert sorted(p.name for p in partial.folder.path.iterdir()) == ["dump.sql.part.json"]


def test_an_identity_without_validators_still_round_trips(partial: PartialFile) -> None:
    """A final file turned back into a partial (to be re-hashed) has only a size."""
    partial.save(ObjectIdentity(None, None, SIZE))
    part_path(partial).write_bytes(b"x" * SIZE)

    assert partial.load() == PartialState(SIZE, ObjectIdentity(None, None, SIZE))


# -- everything else is no partial -------------------------------------------------------


def test_no_part_file_is_no_partial_and_its_sidecar_goes(partial: PartialFile) -> None:
    partial.save(IDENTITY)

    assert_discarded(partial)


def test_a_part_file_without_a_sidecar_is_discarded(partial: PartialFile) -> None:
    part_path(partial).write_bytes(b"x" * 100)

    assert_discarded(partial)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        json.dumps(sidecar())[:-5],  # torn in the middle
        "null",
        "[]",
        '"version 2"',
        b"\xff\xfe{}",  # not UTF-8
        "[" * 100_000,  # deeper than the JSON parser goes
        json.dumps(sidecar()) + "x",
    ],
)
def test_a_garbled_or_truncated_sidecar_is_discarded(
    partial: PartialFile, raw: str | bytes
) -> None:
    on_disk(partial, 100, raw)

    assert_discarded(partial)


def test_a_sidecar_larger_than_any_this_package_writes_is_discarded(partial: PartialFile) -> None:
    on_disk(partial, 100, sidecar(etag=None, padding="x" * (1024 * 1024)))

    assert_discarded(partial)


@pytest.mark.parametrize(
    "fields",
    [
        {"version": 1},  # written before the sidecar came first: not trusted
        {"version": 3},
        {"version": "2"},
        {"version": None},
        {"size": None},
        {"size": "4096"},
        {"size": 4096.0},
        {"size": True},
        {"size": -1},
        {"size": 1 << 60},  # an over-long claim
        {"size": 10**400},
        {"etag": 123},
        {"etag": ["a"]},
        {"etag": "x" * 5000},
        {"last_modified": {"date": DATE}},
    ],
)
def test_a_sidecar_with_a_wrong_version_or_wrong_types_is_discarded(
    partial: PartialFile, fields: dict[str, Any]
) -> None:
    on_disk(partial, 100, sidecar(**fields))

    assert_discarded(partial)


def test_a_format_1_sidecar_is_not_trusted_even_when_otherwise_right(
    partial: PartialFile,
) -> None:
    on_disk(partial, SIZE, {"version": 1, "etag": ETAG, "last_modified": DATE, "size": SIZE})

    assert_discarded(partial)


def test_a_part_longer_than_the_object_its_sidecar_names_is_discarded(
    partial: PartialFile,
) -> None:
    on_disk(partial, SIZE + 1, sidecar())

    assert_discarded(partial)


@pytest.mark.parametrize(
    "segments",
    [
        [],
        {"0": [0, SIZE, 0]},
        [[0, 2048, 0], [1024, SIZE, 1024]],  # overlapping
        [[0, 1024, 0], [2048, SIZE, 2048]],  # a gap
        [[0, 1024, 0], [1024, SIZE + 1, 1024]],  # past the end of the object
        [[0, 1024, 0], [1024, 3072, 1024]],  # short of the end
        [[1, SIZE, 1]],  # not from byte 0
        [[0, SIZE, SIZE + 1]],  # a position past its range
        [[0, 1024, 0], [1024, SIZE, 1000]],  # a position before its range
        [[0, 0, 0], [0, SIZE, 0]],  # an empty range
        [[0, SIZE]],
        [[0, SIZE, 0, 0]],
        [[0, SIZE, "0"]],
        [[0, SIZE, True]],
        [[0.0, SIZE, 0]],
        [(0, SIZE, None)],
    ],
)
def test_ranges_that_do_not_tile_the_object_are_discarded(
    partial: PartialFile, segments: Any
) -> None:
    on_disk(partial, SIZE, sidecar(segments=segments))

    assert_discarded(partial)


def test_a_segmented_partial_not_at_full_length_is_discarded(partial: PartialFile) -> None:
    """The sidecar says preallocated; the file says otherwise (it was cut, or replaced)."""
    on_disk(partial, SIZE - 1, sidecar(segments=[[0, SIZE, 0]]))

    assert_discarded(partial)


def test_ranges_listed_out_of_order_are_read_in_file_order(partial: PartialFile) -> None:
    on_disk(partial, SIZE, sidecar(segments=[[2048, SIZE, 3000], [0, 2048, 10]]))

    assert partial.load() == PartialState(10 + 952, IDENTITY, [(0, 2048, 10), (2048, SIZE, 3000)])


def test_a_symlink_at_the_part_name_is_removed_and_its_target_left_alone(
    partial: PartialFile, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    part_path(partial).symlink_to(target)
    partial.save(IDENTITY)

    assert_discarded(partial)
    assert target.read_bytes() == b"precious"


def test_a_symlink_at_the_sidecar_name_is_not_read(partial: PartialFile, tmp_path: Path) -> None:
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps(sidecar()))
    part_path(partial).write_bytes(b"x" * 100)
    sidecar_path(partial).symlink_to(planted)

    assert_discarded(partial)
    assert planted.exists()


def test_a_folder_at_the_part_name_is_no_partial_rather_than_a_crash(
    partial: PartialFile,
) -> None:
    """ "A ``.part`` that is not a regular file is discarded and the file restarts": a
    folder too (it used to raise IsADirectoryError out of the download)."""
    part_path(partial).mkdir()
    (part_path(partial) / "inside").write_bytes(b"x")
    partial.save(IDENTITY)

    assert_discarded(partial)
    fd = partial.open()  # the restart can create its .part
    os.close(fd)
    assert part_path(partial).is_file()


@pytest.mark.parametrize("seed", range(20))
def test_whatever_the_sidecar_says_the_offset_never_exceeds_the_bytes_on_disk(
    partial: PartialFile, seed: int
) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        length = rng.choice([0, 1, SIZE // 2, SIZE - 1, SIZE, SIZE + 1])
        cut = rng.randrange(1, SIZE)
        segments = rng.choice(
            [
                None,
                [[0, cut, rng.randint(0, cut)], [cut, SIZE, rng.randint(cut, SIZE)]],
                [[0, cut, rng.randint(0, SIZE)], [cut, SIZE, rng.randint(0, SIZE)]],
            ]
        )
        size = rng.choice([SIZE, SIZE // 2, length])
        on_disk(partial, length, sidecar(size=size, segments=segments))

        state = partial.load()

        if part_path(partial).exists():
            assert 0 <= state.offset <= part_path(partial).stat().st_size
            assert state.identity is not None
            assert state.identity.size is not None
            assert state.offset <= state.identity.size
        else:
            assert state == NOTHING


# -- which object: identity --------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "same"),
    [
        (ObjectIdentity(ETAG, DATE, SIZE), True),
        (ObjectIdentity(ETAG, "another date", SIZE), True),  # both ETags known: they decide
        (ObjectIdentity('"new"', DATE, SIZE), False),
        (ObjectIdentity(None, DATE, SIZE), True),
        (ObjectIdentity(None, "another date", SIZE), False),  # no ETag: the date decides
        (ObjectIdentity(None, None, SIZE), True),
        (ObjectIdentity(ETAG, DATE, SIZE + 1), False),
        (ObjectIdentity(ETAG, DATE, None), True),  # an unknown size contradicts nothing
    ],
)
def test_an_object_is_the_same_unless_a_validator_both_sides_know_differs(
    other: ObjectIdentity, same: bool
) -> None:
    assert IDENTITY.same_object(other) is same
    assert other.same_object(IDENTITY) is same


@pytest.mark.parametrize(
    ("identity", "if_range", "resumable"),
    [
        (ObjectIdentity('"strong"', DATE, SIZE), '"strong"', True),
        (ObjectIdentity('W/"weak"', DATE, SIZE), DATE, True),  # a weak ETag cannot validate
        (ObjectIdentity('W/"weak"', None, SIZE), None, False),
        (ObjectIdentity(None, DATE, SIZE), DATE, True),
        (ObjectIdentity('"strong"', DATE, None), '"strong"', False),  # no size to resume to
        (ObjectIdentity(None, None, SIZE), None, False),
    ],
)
def test_if_range_sends_a_strong_etag_else_the_date(
    identity: ObjectIdentity, if_range: str | None, resumable: bool
) -> None:
    assert identity.if_range == if_range
    assert identity.resumable is resumable


def test_identity_comes_from_the_headers_with_empty_values_as_missing() -> None:
    assert ObjectIdentity.from_headers({"ETag": "", "Last-Modified": DATE}, 5) == ObjectIdentity(
        None, DATE, 5
    )
