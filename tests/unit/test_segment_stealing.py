"""Handing out the ranges of a segmented download, without a server: ``take_piece`` gives
a new connection the next piece in file order, and once none is left, the back half of the
largest range still open (work stealing).

The promises: pieces go out in file order (the in-order hash keeps pace), a cut is aligned,
no range handed to a connection is below the minimum size, and however the work is split
the ranges tile the file exactly: no byte fetched twice, none never fetched.
"""

from __future__ import annotations

import itertools
import random

import attrs
import pytest

from oec_async.download._segments import Segment, take_piece

ALIGN = 64 * 1024  # the module's cut alignment
MIN = 4 * ALIGN
PIECE = 2 * MIN  # what SegmentedFetch hands out: twice the minimum


def fresh(size: int) -> tuple[list[Segment], list[Segment]]:
    """One range over the whole file, not yet given to anyone."""
    segments = [Segment(0, size, 0)]
    return segments, list(segments)


def spans(segments: list[Segment]) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in segments]


def assert_tiles(segments: list[Segment], size: int) -> None:
    """The ranges are sorted, touch end to start, and cover exactly ``0..size``."""
    assert segments[0].start == 0
    assert segments[-1].end == size
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start, spans(segments)
    for s in segments:
        assert s.start <= s.pos <= s.claimed <= s.end, s


# -- in file order -----------------------------------------------------------------------


def test_pieces_go_out_in_file_order_each_cut_on_an_aligned_offset() -> None:
    size = 5 * PIECE + MIN + ALIGN
    segments, unassigned = fresh(size)

    handed = []
    while unassigned and (piece := take_piece(segments, unassigned, PIECE, MIN)) is not None:
        handed.append(piece)

    assert spans(handed) == [
        (0, PIECE),
        (PIECE, 2 * PIECE),
        (2 * PIECE, 3 * PIECE),
        (3 * PIECE, 4 * PIECE),
        (4 * PIECE, 5 * PIECE),
        (5 * PIECE, size),
    ]
    assert spans(segments) == spans(handed)
    assert unassigned == []


def test_a_piece_is_cut_at_the_next_aligned_offset_after_its_position() -> None:
    """A loaded range resumes from an odd position; its cut still falls on an aligned
    offset of the file, so the next piece starts on one."""
    segments = [Segment(0, 10 * PIECE, 1000)]
    unassigned = list(segments)

    piece = take_piece(segments, unassigned, PIECE, MIN)

    assert piece is segments[0]
    assert (piece.start, piece.pos, piece.end) == (0, 1000, PIECE + ALIGN)
    assert spans(unassigned) == [(PIECE + ALIGN, 10 * PIECE)]
    assert_tiles(segments, 10 * PIECE)


def test_a_complete_range_is_never_handed_out() -> None:
    segments = [Segment(0, PIECE, PIECE), Segment(PIECE, 2 * PIECE, PIECE + 10)]
    unassigned = list(segments)

    piece = take_piece(segments, unassigned, PIECE, MIN)

    assert piece is segments[1]
    assert unassigned == []


def test_a_range_shorter_than_a_piece_is_handed_out_whole() -> None:
    segments, unassigned = fresh(PIECE - 1)

    piece = take_piece(segments, unassigned, PIECE, MIN)

    assert piece is not None
    assert (piece.start, piece.end) == (0, PIECE - 1)
    assert len(segments) == 1


@pytest.mark.parametrize("tail", [1, ALIGN, MIN - 1])
def test_the_last_piece_is_never_below_the_minimum_size(tail: int) -> None:
    """A file a few bytes longer than a whole number of pieces: the few bytes go with the
    last piece, not to a connection of their own (``min_segment_size``: "ranges never
    below")."""
    size = 3 * PIECE + tail
    segments, unassigned = fresh(size)

    handed = []
    while unassigned and (piece := take_piece(segments, unassigned, PIECE, MIN)) is not None:
        handed.append(piece)

    assert spans(handed) == [(0, PIECE), (PIECE, 2 * PIECE), (2 * PIECE, size)]
    assert_tiles(segments, size)


# -- stealing ------------------------------------------------------------------------------


def test_with_nothing_unassigned_the_back_half_of_the_largest_open_range_is_stolen() -> None:
    small = Segment(0, 4 * MIN, 0)
    large = Segment(4 * MIN, 20 * MIN, 4 * MIN + ALIGN)
    segments = [small, large]

    stolen = take_piece(segments, [], PIECE, MIN)

    assert stolen is not None
    # 63 alignment units left after the victim's position: it keeps 31, the thief 32
    assert (stolen.start, stolen.end, stolen.pos) == (12 * MIN, 20 * MIN, 12 * MIN)
    assert large.end == stolen.start
    assert stolen.end == 20 * MIN
    assert stolen.pos == stolen.start
    assert segments == [small, large, stolen]  # still sorted
    assert_tiles(segments, 20 * MIN)


def test_the_steal_splits_what_is_not_yet_received_not_what_is_on_disk() -> None:
    """Bytes received but not yet written (``claimed``) are the victim's: the thief starts
    past them, at the middle of what nobody has yet."""
    victim = Segment(0, 16 * MIN, pos=2 * MIN, claimed=6 * MIN)

    stolen = take_piece([victim], [], PIECE, MIN)

    assert stolen is not None
    assert (stolen.start, stolen.end) == (11 * MIN, 16 * MIN)
    assert (victim.start, victim.end, victim.pos, victim.claimed) == (0, 11 * MIN, 2 * MIN, 6 * MIN)


def test_the_steal_point_is_an_aligned_distance_from_the_victims_position() -> None:
    victim = Segment(0, 16 * MIN + 12345, pos=777, claimed=777)

    stolen = take_piece([victim], [], PIECE, MIN)

    assert stolen is not None
    assert (stolen.start - 777) % ALIGN == 0
    # the middle of what is left, rounded down to the alignment: the thief takes the rest
    assert stolen.start == 777 + ((16 * MIN + 12345 - 777) // 2 // ALIGN) * ALIGN
    assert victim.end == stolen.start


def test_the_largest_range_is_the_victim_by_what_is_left_not_by_its_length() -> None:
    long_but_nearly_done = Segment(0, 40 * MIN, pos=38 * MIN)
    short_but_untouched = Segment(40 * MIN, 50 * MIN, pos=40 * MIN)
    segments = [long_but_nearly_done, short_but_untouched]

    stolen = take_piece(segments, [], PIECE, MIN)

    assert stolen is not None
    assert (stolen.start, stolen.end) == (45 * MIN, 50 * MIN)
    assert long_but_nearly_done.end == 40 * MIN


@pytest.mark.parametrize("left", [0, 1, MIN, 2 * MIN - 1])
def test_nothing_is_stolen_from_a_range_with_less_than_two_minimum_sizes_left(left: int) -> None:
    segments = [Segment(0, 10 * MIN, 10 * MIN - left)]
    before = [attrs.evolve(s) for s in segments]

    assert take_piece(segments, [], PIECE, MIN) is None
    assert segments == before


def test_a_stolen_range_is_never_below_the_minimum_size() -> None:
    for left in range(2 * MIN, 2 * MIN + 3 * ALIGN, 4099):
        victim = Segment(0, 100 * MIN, 100 * MIN - left)

        stolen = take_piece([victim], [], PIECE, MIN)

        assert stolen is not None
        assert stolen.end - stolen.start >= MIN, left
        assert victim.end - victim.claimed >= MIN, left


# -- the invariants, under random schedules ----------------------------------------------


@attrs.define
class Worker:
    segment: Segment


def check_ownership(
    segments: list[Segment], unassigned: list[Segment], workers: list[Worker]
) -> None:
    """Every open range is fetched by exactly one worker, or waits unassigned: none is
    lost, none is fetched twice."""
    owned = [id(w.segment) for w in workers if not w.segment.complete]
    waiting = [id(s) for s in unassigned if not s.complete]
    assert len(owned) == len(set(owned))
    assert not set(owned) & set(waiting)
    open_ranges = {id(s) for s in segments if not s.complete}
    assert open_ranges == set(owned) | set(waiting)


def run_schedule(rng: random.Random) -> None:
    min_size = rng.choice([ALIGN, 2 * ALIGN, 100 * 1024, 4 * ALIGN + 1])
    piece = 2 * min_size
    size = rng.randrange(1, 30 * min_size)
    connections = rng.randint(1, 6)
    segments, unassigned = fresh(size)
    workers: list[Worker] = []
    written: list[tuple[int, int]] = []
    for _ in range(10_000):
        if all(s.complete for s in segments):
            break
        if len(workers) < connections and rng.random() < 0.3:
            taken = take_piece(segments, unassigned, piece, min_size)
            if taken is not None:
                assert taken.end - taken.pos >= min_size or taken.start == 0
                workers.append(Worker(taken))
        elif workers:
            worker = rng.choice(workers)
            segment = worker.segment
            if segment.claimed < segment.end and rng.random() < 0.6:
                segment.claimed += rng.randint(1, min(segment.end - segment.claimed, 3 * ALIGN))
            elif segment.pos < segment.claimed:  # what was received reaches the disk
                written.append((segment.pos, segment.claimed))
                segment.pos = segment.claimed
            if segment.complete:
                workers.remove(worker)
        else:  # nobody at work: an open range must be there to take
            taken = take_piece(segments, unassigned, piece, min_size)
            assert taken is not None, "open ranges, but nobody fetches them"
            workers.append(Worker(taken))
        assert_tiles(segments, size)
        check_ownership(segments, unassigned, workers)
    assert all(s.complete for s in segments)
    written.sort()
    assert written[0][0] == 0
    assert written[-1][1] == size
    for (_, end), (start, _) in itertools.pairwise(written):
        assert end == start  # no byte written twice, none skipped


@pytest.mark.parametrize("seed", range(40))
def test_under_any_schedule_the_ranges_tile_the_file_and_every_byte_is_fetched_once(
    seed: int,
) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        run_schedule(rng)
