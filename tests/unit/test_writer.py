"""Bytes to disk and into the running hash, on real files: what is written is exactly what
was given, at the offsets given; the digests equal hashlib's over the same bytes; and a
write that fails surfaces as an error (a full disk as ``InsufficientSpaceError``), with
the file cut back to what was written and hashed, never as a hang.

``/dev/full`` stands in for a full disk: every write to it fails with ENOSPC.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import mmap
import os
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from oec_async.download._writer import (
    Chunk,
    DirectWrites,
    Hashes,
    StreamWriter,
    WriteBehind,
    after_threads,
    hash_range,
    no_space_error,
    write_at,
)
from oec_async.errors import InsufficientSpaceError

PAGE = mmap.PAGESIZE
DATA = random.Random(7).randbytes(3 * 1024 * 1024 + 123)


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    """A new file, open for reading and writing."""
    opened = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT, 0o600)
    yield opened
    os.close(opened)


def content(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size + 1, 0)


def full_disk() -> int:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this machine")
    return os.open("/dev/full", os.O_WRONLY)


def split(data: bytes, rng: random.Random, most: int = 200_000) -> list[Chunk]:
    """``data`` as chunks of random sizes, of the three kinds a receiver hands over."""
    chunks: list[Chunk] = []
    position = 0
    while position < len(data):
        size = rng.randint(1, most)
        piece = data[position : position + size]
        chunks.append(rng.choice([bytes, bytearray, memoryview])(piece))
        position += size
    return chunks


def aligned_buffer(data: bytes) -> memoryview:
    """``data`` in page-aligned memory, as the fast receive path's buffers are."""
    buffer = mmap.mmap(-1, len(data))
    buffer.write(data)
    return memoryview(buffer)


# -- write_at ----------------------------------------------------------------------------


def test_chunks_written_at_an_offset_land_there_contiguously(fd: int) -> None:
    write_at(fd, [b"abc", bytearray(b"def"), memoryview(b"ghij")], 5, "database")

    assert content(fd) == b"\0" * 5 + b"abcdefghij"


def test_writes_at_offsets_in_any_order_give_the_exact_bytes(fd: int) -> None:
    rng = random.Random(3)
    pieces, position = [], 0
    for chunk in split(DATA, rng):
        pieces.append((position, chunk))
        position += len(chunk)
    rng.shuffle(pieces)

    for offset, chunk in pieces:
        write_at(fd, [chunk] if rng.random() < 0.5 else [chunk[:1], chunk[1:]], offset, "dump")

    assert content(fd) == DATA


def test_a_write_on_a_full_disk_is_an_insufficient_space_error_naming_the_artifact() -> None:
    full = full_disk()
    try:
        with pytest.raises(InsufficientSpaceError, match="filled up") as caught:
            write_at(full, [b"x" * 10, b"y" * 10], 0, "filestore")
    finally:
        os.close(full)

    assert caught.value.artifact == "filestore"


def test_a_write_to_a_descriptor_not_open_for_writing_raises_the_os_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"old")
    read_only = os.open(tmp_path / "file", os.O_RDONLY)
    try:
        with pytest.raises(OSError, match=os.strerror(errno.EBADF)) as caught:
            write_at(read_only, [b"new"], 0, "database")
    finally:
        os.close(read_only)

    assert caught.value.errno == errno.EBADF
    assert not isinstance(caught.value, InsufficientSpaceError)
    assert (tmp_path / "file").read_bytes() == b"old"


@pytest.mark.parametrize(
    ("code", "full"),
    [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EFBIG, True), (errno.EIO, False)],
)
def test_only_a_full_disk_quota_or_file_size_limit_counts_as_out_of_space(
    code: int, full: bool
) -> None:
    error = OSError(code, os.strerror(code))

    turned = no_space_error(error, "manifest")

    assert isinstance(turned, InsufficientSpaceError) is full
    assert (turned is error) is not full


# -- the hashes --------------------------------------------------------------------------


def test_the_running_hashes_equal_hashlib_over_the_same_bytes() -> None:
    hashes = Hashes({"md5", "sha1"})

    hashes.update_all(split(DATA, random.Random(5)))

    assert hashes.hexdigest("sha256") == hashlib.sha256(DATA).hexdigest()
    assert hashes.hexdigest("md5") == hashlib.md5(DATA).hexdigest()  # noqa: S324
    assert hashes.hexdigest("sha1") == hashlib.sha1(DATA).hexdigest()  # noqa: S324
    assert hashes.hexdigest("sha512") is None  # never asked for


def test_sha256_is_always_kept_whatever_the_manifest_asks_for() -> None:
    assert set(Hashes(set()).hashers) == {"sha256"}
    assert set(Hashes({"md5"}).hashers) == {"sha256", "md5"}


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, len(DATA)), (0, 1), (0, 1024 * 1024), (0, 1024 * 1024 + 1), (0, 0), (0, 2_500_000)],
)
def test_hashing_a_prefix_read_back_from_the_file_equals_hashlib_over_it(
    fd: int, start: int, end: int
) -> None:
    os.pwrite(fd, DATA, 0)
    hashes = Hashes(set())

    hash_range(fd, start, end, hashes)

    assert hashes.hexdigest("sha256") == hashlib.sha256(DATA[start:end]).hexdigest()


def test_ranges_read_back_in_order_hash_like_the_whole_file(fd: int) -> None:
    """What landed ahead of the hash frontier is read back once the frontier reaches it:
    hashing ``0..a``, then ``a..b``, then ``b..end`` is hashing the file."""
    os.pwrite(fd, DATA, 0)
    hashes = Hashes(set())

    for start, end in [(0, 1000), (1000, 1_048_576 + 7), (1_048_583, len(DATA))]:
        hash_range(fd, start, end, hashes)

    assert hashes.hexdigest("sha256") == hashlib.sha256(DATA).hexdigest()


def test_hashing_past_the_end_of_the_file_raises_instead_of_hashing_less(fd: int) -> None:
    os.pwrite(fd, b"short", 0)

    with pytest.raises(OSError, match="shorter than expected"):
        hash_range(fd, 0, 6, Hashes(set()))


# -- direct writes -----------------------------------------------------------------------


def test_direct_writes_take_only_one_aligned_chunk_at_an_aligned_offset(fd: int) -> None:
    direct = DirectWrites(os.dup(fd))
    page = aligned_buffer(b"p" * PAGE)
    try:
        assert not direct.write([page], PAGE, aligned=False)
        assert not direct.write([page], 1, aligned=True)
        assert not direct.write([page[:100]], 0, aligned=True)
        assert not direct.write([page, page], 0, aligned=True)
        assert content(fd) == b""  # nothing was written by a refusal

        assert direct.write([page], PAGE, aligned=True)
    finally:
        direct.close()

    assert content(fd) == b"\0" * PAGE + b"p" * PAGE
    assert direct.fd is None


def test_without_a_direct_descriptor_every_write_goes_the_ordinary_way() -> None:
    assert not DirectWrites(None).write([aligned_buffer(b"p" * PAGE)], 0, aligned=True)


def test_a_file_system_refusing_the_direct_write_makes_later_writes_ordinary(
    tmp_path: Path, fd: int
) -> None:
    """``O_DIRECT`` opened, but the write refused (EINVAL, here: memory not aligned after
    all): nothing was written, and the direct descriptor is given up."""
    try:
        opened = os.open(tmp_path / "file", os.O_WRONLY | os.O_DIRECT)
    except (AttributeError, OSError):
        pytest.skip("no O_DIRECT on this file system")
    direct = DirectWrites(opened)
    misaligned = memoryview(mmap.mmap(-1, 2 * PAGE))[1 : PAGE + 1]

    try:
        assert not direct.write([misaligned], 0, aligned=True)
        assert direct.fd is None
    finally:
        os.close(opened)

    assert content(fd) == b""


def test_a_direct_write_on_a_full_disk_raises_instead_of_falling_back() -> None:
    direct = DirectWrites(full_disk())
    try:
        with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)) as caught:
            direct.write([aligned_buffer(b"p" * PAGE)], 0, aligned=True)
    finally:
        direct.close()

    assert caught.value.errno == errno.ENOSPC


# -- the stream writer -------------------------------------------------------------------


async def write_all(writer: StreamWriter, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        await writer.write([chunk])
    await writer.drain()


async def test_a_stream_is_written_and_hashed_exactly_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "dump"
    hashes = Hashes({"md5"})
    confirmed: list[int] = []
    writer = StreamWriter(
        os.open(path, os.O_RDWR | os.O_CREAT, 0o600),
        hashes,
        0,
        "database",
        max_inflight=2,
        on_confirmed=confirmed.append,
    )

    await write_all(writer, split(DATA, random.Random(11), most=64 * 1024))
    await writer.close()

    assert path.read_bytes() == DATA
    assert hashes.hexdigest("sha256") == hashlib.sha256(DATA).hexdigest()
    assert hashes.hexdigest("md5") == hashlib.md5(DATA).hexdigest()  # noqa: S324
    assert writer.confirmed == len(DATA)
    assert writer.hashes_valid
    assert confirmed == sorted(confirmed)
    assert confirmed[-1] == len(DATA)


async def test_a_resumed_stream_appends_after_the_bytes_already_there(tmp_path: Path) -> None:
    path = tmp_path / "dump"
    path.write_bytes(DATA[:1000])
    hashes = Hashes(set())
    hashes.update(DATA[:1000])  # as a resume does: the prefix is hashed from disk first
    writer = StreamWriter(os.open(path, os.O_RDWR), hashes, 1000, "database")

    await write_all(writer, [DATA[1000:5000], DATA[5000:]])
    await writer.close()

    assert path.read_bytes() == DATA
    assert hashes.hexdigest("sha256") == hashlib.sha256(DATA).hexdigest()


async def test_a_stream_on_a_full_disk_fails_with_insufficient_space_not_a_hang() -> None:
    writer = StreamWriter(full_disk(), Hashes(set()), 0, "database")

    with pytest.raises(InsufficientSpaceError, match="filled up"):
        async with asyncio.timeout(10):
            await write_all(writer, [b"x" * 4096] * 8)
    await writer.close()

    assert writer.confirmed == 0
    assert not writer.hashes_valid  # the hash lane ran past what reached the disk


async def test_after_a_failed_write_the_file_is_cut_back_to_what_was_written_and_hashed(
    tmp_path: Path,
) -> None:
    """The first page reaches the file; the second (written directly) hits a full disk.
    A stale tail that was in the file is cut away: file and hash agree on one page."""
    path = tmp_path / "dump"
    path.write_bytes(b"stale" * PAGE)
    writer = StreamWriter(
        os.open(path, os.O_RDWR), Hashes(set()), 0, "database", direct=full_disk()
    )

    await writer.write([DATA[:PAGE]])
    await writer.drain()

    async def the_rest() -> None:
        await writer.write([aligned_buffer(DATA[PAGE : 2 * PAGE])], aligned=True)
        await writer.write([DATA[2 * PAGE : 3 * PAGE]])  # never written after the gap
        await writer.drain()

    with pytest.raises(InsufficientSpaceError):
        await asyncio.wait_for(the_rest(), 10)
    await writer.close()

    assert path.read_bytes() == DATA[:PAGE]
    assert writer.confirmed == PAGE
    assert not writer.hashes_valid


class HeldHashes(Hashes):
    """Digests whose hash thread waits for ``go`` before each buffer."""

    def __init__(self) -> None:
        super().__init__(set())
        self.go = threading.Event()

    def update_all(self, chunks: Sequence[Chunk]) -> None:
        self.go.wait(10)
        super().update_all(chunks)


async def test_buffers_are_released_only_once_both_threads_are_done_with_them(
    tmp_path: Path,
) -> None:
    hashes = HeldHashes()
    writer = StreamWriter(os.open(tmp_path / "dump", os.O_RDWR | os.O_CREAT, 0o600), hashes, 0, "x")
    released: list[int] = []

    for number in range(3):  # under max_inflight: nothing waits for the held hash thread
        await writer.write([DATA[:1000]], released=functools.partial(released.append, number))
    # The write thread is done with all three (its lane runs in order) ...
    await asyncio.wrap_future(writer._write_lane.submit(lambda: None))
    await asyncio.sleep(0)  # ... and the loop has run what its end scheduled
    released_while_hashing = list(released)
    hashes.go.set()
    await writer.drain()
    await writer.close()

    assert released_while_hashing == []  # the hash thread still had every buffer
    assert sorted(released) == [0, 1, 2]


# -- helpers of the threads ----------------------------------------------------------------


async def test_after_threads_runs_finish_once_every_job_is_over_even_a_failed_one() -> None:
    loop = asyncio.get_running_loop()
    finished: list[str] = []

    def fail() -> None:
        raise OSError("disk gone")

    jobs = [loop.run_in_executor(None, lambda: None), loop.run_in_executor(None, fail)]

    await after_threads(jobs, lambda: finished.append("closed"))

    assert finished == ["closed"]
    assert all(job.done() for job in jobs)


async def test_after_threads_with_no_jobs_finishes_at_once() -> None:
    finished: list[bool] = []

    await after_threads([], lambda: finished.append(True))

    assert finished == [True]


def test_write_behind_advises_only_once_a_whole_step_is_behind(fd: int) -> None:
    behind = WriteBehind(fd)

    behind.advance(WriteBehind.STEP - 1)
    assert behind.done == 0
    behind.advance(WriteBehind.STEP + 5)
    assert behind.done == WriteBehind.STEP + 5
