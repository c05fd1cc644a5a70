"""The one chunked upload (`moorage.storage.upload`), tested directly.

The S3, GCS and Azure backends all cut their writes with `cut`, read the parts through
`Buffers` and send them with `send_parts`; their own tests only see what reaches a
server. These tests pin the shared pieces down on their own: where the part boundaries
fall, that parts are views of the caller's buffers (a copy only across a seam), and that
the pool never has more than its bound in flight and leaves nothing running when a part
fails. Concurrency is observed by counting running coroutines and by the order of
events, never by the clock.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.buffers import BytesLike
from moorage.storage.upload import Buffers, byte_views, cut, send_parts

Ranges = list[tuple[int, int]]


# -- cut: part boundaries -----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "unit", "pack"),
    [(0, 1, False), (-4, 1, False), (4, 0, False), (6, 4, False), (2, 4, False)],
)
def test_cut_rejects_a_size_that_is_not_a_positive_multiple_of_the_unit(
    size: int, unit: int, pack: bool
) -> None:
    with pytest.raises(ValueError, match=f"part size {size} is not a positive multiple"):
        cut([10], size, unit=unit, pack=pack)


def test_cut_refuses_to_pack_aligned_parts() -> None:
    with pytest.raises(ValueError, match="alignment to 4 bytes"):
        cut([10], 8, unit=4, pack=True)


@pytest.mark.parametrize(
    ("lengths", "expected"),
    [
        ([], []),
        ([0], []),
        ([0, 0, 0], []),
        ([3], [(0, 3)]),  # shorter than one part
        ([4], [(0, 4)]),  # exactly one part
        ([8], [(0, 4), (4, 8)]),  # an exact multiple: no empty last part
        ([10], [(0, 4), (4, 8), (8, 10)]),  # a short last part
    ],
)
def test_cut_one_buffer(lengths: list[int], expected: Ranges) -> None:
    assert cut(lengths, 4) == expected


def test_cut_without_alignment_never_crosses_a_buffer() -> None:
    # Each buffer is sliced on its own; its tail is a short part, not topped up from
    # the next buffer (that would need a copy).
    assert cut([10, 3], 4) == [(0, 4), (4, 8), (8, 10), (10, 13)]
    # Empty buffers anywhere change nothing.
    assert cut([0, 10, 0, 3, 0], 4) == cut([10, 3], 4)
    assert cut([4, 4], 4) == [(0, 4), (4, 8)]


def test_cut_aligned_with_unit_equal_to_size_makes_every_part_but_the_last_full() -> None:
    # S3 and GCS style: 3 + 2 bytes are topped up across two seams.
    assert cut([3, 2, 10], 4, unit=4) == [(0, 4), (4, 8), (8, 12), (12, 15)]
    assert cut([2, 3, 4], 4, unit=4) == [(0, 4), (4, 8), (8, 9)]
    assert cut([1, 1, 1, 1, 1], 2, unit=2) == [(0, 2), (2, 4), (4, 5)]
    # Trailing empty buffers leave the short last part alone.
    assert cut([5, 0, 3], 4, unit=4) == [(0, 4), (4, 8)]


def test_cut_aligned_part_across_a_seam_is_exactly_one_unit() -> None:
    # unit 4, size 8: 5 bytes give one unit (0-4) and a 1-byte leftover, which is
    # topped up to one unit from the next buffer (4-8, the only copied part); the
    # rest of that buffer goes in full parts of 8 while whole units remain.
    assert cut([5, 20], 8, unit=4) == [(0, 4), (4, 8), (8, 16), (16, 24), (24, 25)]
    assert cut([3, 2, 10], 8, unit=4) == [(0, 4), (4, 8), (8, 12), (12, 15)]


def test_cut_packs_small_pieces_that_fit_together() -> None:
    # A record's small header and metadata go up as one part, not one each.
    assert cut([3, 1, 10], 4, pack=True) == [(0, 4), (4, 8), (8, 12), (12, 14)]
    assert cut([1] * 6, 4, pack=True) == [(0, 4), (4, 6)]
    # A buffer's tail shares a part with a small next buffer.
    assert cut([10, 1], 4, pack=True) == [(0, 4), (4, 8), (8, 11)]
    # Pieces that do not fit together stay apart, and full parts never grow.
    assert cut([3, 2, 10], 4, pack=True) == [(0, 3), (3, 5), (5, 9), (9, 13), (13, 15)]
    assert cut([10, 3], 4, pack=True) == [(0, 4), (4, 8), (8, 10), (10, 13)]


@st.composite
def cut_options(draw: st.DrawFn) -> tuple[int, int, bool]:
    """A part ``size``, its ``unit`` and ``pack``, as the backends may combine them."""
    unit = draw(st.sampled_from([1, 1, 2, 3, 4, 8]))
    size = unit * draw(st.integers(1, 5))
    pack = unit == 1 and draw(st.booleans())
    return size, unit, pack


@st.composite
def cut_arguments(draw: st.DrawFn) -> tuple[list[int], int, int, bool]:
    lengths = draw(st.lists(st.integers(0, 40), max_size=8))
    return (lengths, *draw(cut_options()))


def _seams(lengths: list[int]) -> set[int]:
    """Offsets where one non-empty buffer ends and the next begins."""
    ends: list[int] = []
    offset = 0
    for length in lengths:
        offset += length
        if length:
            ends.append(offset)
    return set(ends[:-1])


def _crosses(part: tuple[int, int], seams: set[int]) -> bool:
    start, end = part
    return any(start < seam < end for seam in seams)


@given(cut_arguments())
def test_cut_parts_tile_the_bytes_within_the_limits(
    arguments: tuple[list[int], int, int, bool],
) -> None:
    lengths, size, unit, pack = arguments
    parts = cut(lengths, size, unit=unit, pack=pack)
    total = sum(lengths)
    # In order, end to end, covering every byte once, none empty.
    assert [start for start, _ in parts] == [0, *(end for _, end in parts)][: len(parts)]
    assert (parts[-1][1] if parts else 0) == total
    assert all(0 < end - start <= size for start, end in parts)
    # Aligned: every part but the last is whole units.
    assert all((end - start) % unit == 0 for start, end in parts[:-1])
    if unit == size:
        assert all(end - start == size for start, end in parts[:-1])


@given(cut_arguments())
def test_cut_copies_no_more_than_alignment_needs(
    arguments: tuple[list[int], int, int, bool],
) -> None:
    lengths, size, unit, _ = arguments
    parts = cut(lengths, size, unit=unit)
    seams = _seams(lengths)
    for number, part in enumerate(parts, 1):
        if _crosses(part, seams):  # only these are copied: one unit at most
            assert unit > 1
            if number < len(parts):
                assert part[1] - part[0] == unit
            else:  # the leftover of the last buffers
                assert part[1] - part[0] <= unit
    # Inside a buffer, parts are as large as allowed: a part followed by another in the
    # same buffer is a full one unless that next one is the last, short, leftover.
    for first, then in itertools.pairwise(parts[:-1]):
        if not _crosses((first[0], then[1]), seams):
            assert first[1] - first[0] == size
    if unit == 1:  # each buffer cut from its own start, exactly
        expected: Ranges = []
        offset = 0
        for length in lengths:
            expected += [
                (offset + at, offset + min(at + size, length)) for at in range(0, length, size)
            ]
            offset += length
        assert parts == expected


@given(st.lists(st.integers(0, 40), max_size=8), st.integers(1, 12))
def test_cut_packs_greedily_without_splitting_parts(lengths: list[int], size: int) -> None:
    plain = cut(lengths, size)
    packed = cut(lengths, size, pack=True)
    # Each packed part is a run of whole plain parts ...
    boundaries = {start for start, _ in plain} | {end for _, end in plain}
    assert all(start in boundaries and end in boundaries for start, end in packed)
    assert [start for start, _ in packed] == [0, *(end for _, end in packed)][: len(packed)]
    assert (packed[-1][1] if packed else 0) == sum(lengths)
    assert all(end - start <= size for start, end in packed)
    # ... full plain parts stay on their own, and no two neighbours would fit in one.
    for start, end in plain:
        if end - start == size:
            assert (start, end) in packed
    for (start, middle), (_, end) in itertools.pairwise(packed):
        assert end - start > size, (start, middle, end)


# -- Buffers: parts as views ----------------------------------------------------------


def test_byte_views_flatten_to_bytes_and_drop_empty_buffers() -> None:
    numbers = array.array("i", [1, 2, 3])
    grid = memoryview(b"abcdef").cast("B", (2, 3))
    views = byte_views([b"", memoryview(numbers), bytearray(), grid, memoryview(b"")])
    assert [view.nbytes for view in views] == [numbers.itemsize * 3, 6]
    assert [len(view) for view in views] == [numbers.itemsize * 3, 6]  # bytes, not items
    assert views[0].obj is numbers
    assert bytes(views[1]) == b"abcdef"


def test_buffers_size_counts_bytes_of_every_buffer() -> None:
    numbers = array.array("i", [7, 8])
    buffers = Buffers([b"abc", memoryview(numbers), bytearray(b"xy"), b""])
    assert buffers.size == 3 + 2 * numbers.itemsize + 2
    assert len(buffers.views) == 3
    joined = b"abc" + numbers.tobytes() + b"xy"
    assert bytes(buffers.data(0, buffers.size)) == joined


def test_data_within_one_buffer_is_a_view_of_the_callers_buffer() -> None:
    head, payload = bytearray(b"HEAD"), bytearray(b"0123456789")
    buffers = Buffers([head, payload])
    part = buffers.data(6, 10)
    assert bytes(part) == b"2345"
    assert part.obj is payload
    payload[2] = ord("X")  # no copy: the caller's bytes show through
    assert bytes(part) == b"X345"
    whole_head = buffers.data(0, 4)
    assert whole_head.obj is head


def test_data_of_a_bytes_slice_is_a_view_of_the_callers_bytes() -> None:
    source = b"--payload--"
    buffers = Buffers([b"h", memoryview(source)[2:9]])
    part = buffers.data(1, 8)
    assert bytes(part) == b"payload"
    assert part.obj is source


def test_data_across_a_seam_is_one_copy() -> None:
    first, second = bytearray(b"abc"), bytearray(b"defg")
    buffers = Buffers([first, second])
    part = buffers.data(1, 5)
    assert bytes(part) == b"bcde"
    assert part.obj is not first
    assert part.obj is not second
    first[1] = ord("X")
    second[0] = ord("Y")
    assert bytes(part) == b"bcde"


def test_pieces_are_views_of_each_buffer_the_range_touches() -> None:
    a, b, c = bytearray(b"abc"), bytearray(b"de"), bytearray(b"fghi")
    buffers = Buffers([a, b"", b, c])
    pieces = buffers.pieces(2, 7)
    assert [bytes(piece) for piece in pieces] == [b"c", b"de", b"fg"]
    assert all(piece.obj is source for piece, source in zip(pieces, [a, b, c], strict=True))
    # A range that starts exactly where a buffer starts takes nothing of the one before.
    assert [bytes(piece) for piece in buffers.pieces(3, 5)] == [b"de"]
    assert [bytes(piece) for piece in buffers.pieces(5, 9)] == [b"fghi"]


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (0, 10), (5, 4), (10, 10)])
def test_pieces_outside_the_buffers_are_refused(start: int, end: int) -> None:
    buffers = Buffers([b"abc", b"defgh", b"i"])  # 9 bytes
    with pytest.raises(ValueError, match=f"range {start}-{end} outside 0-9"):
        buffers.pieces(start, end)


def test_empty_ranges_and_empty_buffers() -> None:
    buffers = Buffers([b"abc", b"def"])
    assert buffers.pieces(3, 3) == []
    assert bytes(buffers.data(6, 6)) == b""
    nothing = Buffers([b"", bytearray()])
    assert nothing.size == 0
    assert nothing.cut(4) == []
    assert nothing.pieces(0, 0) == []
    assert nothing.single() is None


def test_body_is_a_file_of_the_range_at_its_start() -> None:
    buffers = Buffers([b"abc", bytearray(b"def"), memoryview(b"ghi")])
    body = buffers.body(2, 8)
    assert body.tell() == 0
    assert body.read() == b"cdefgh"


def test_single_is_the_callers_bytes_object_only_when_that_is_all() -> None:
    payload = b"payload"
    assert Buffers([payload]).single() is payload
    assert Buffers([b"", memoryview(payload), b""]).single() is payload
    assert Buffers([memoryview(payload)[1:]]).single() is None  # a slice: not the object
    assert Buffers([bytearray(payload)]).single() is None
    assert Buffers([payload, b"more"]).single() is None


def test_buffers_cut_uses_the_byte_lengths_of_non_empty_buffers() -> None:
    numbers = array.array("i", [1, 2])
    buffers = Buffers([b"", memoryview(numbers), b"abc"])
    n = 2 * numbers.itemsize
    assert buffers.cut(4) == cut([n, 3], 4)
    assert buffers.cut(4, unit=4) == cut([n, 3], 4, unit=4)
    assert buffers.cut(4, pack=True) == cut([n, 3], 4, pack=True)


def _source(buffer: BytesLike) -> object:
    return memoryview(buffer).obj


@st.composite
def buffer_lists(draw: st.DrawFn) -> list[BytesLike]:
    buffers: list[BytesLike] = []
    for content in draw(st.lists(st.binary(max_size=30), max_size=6)):
        kind = draw(st.sampled_from(["bytes", "bytearray", "view", "slice"]))
        if kind == "bytes":
            buffers.append(content)
        elif kind == "bytearray":
            buffers.append(bytearray(content))
        elif kind == "view":
            buffers.append(memoryview(content))
        else:
            buffers.append(memoryview(b"<" + content + b">")[1:-1])
    return buffers


@given(buffer_lists(), cut_options())
def test_parts_join_to_the_input_and_are_views_unless_they_cross(
    buffers: list[BytesLike], options: tuple[int, int, bool]
) -> None:
    size, unit, pack = options
    source = Buffers(buffers)
    joined = b"".join(bytes(buffer) for buffer in buffers)
    assert source.size == len(joined)
    parts = source.cut(size, unit=unit, pack=pack)
    datas = [source.data(start, end) for start, end in parts]
    assert b"".join(bytes(data) for data in datas) == joined
    assert b"".join(source.body(start, end).read() for start, end in parts) == joined
    owners = [_source(buffer) for buffer in buffers if len(bytes(buffer))]
    seams = _seams([len(bytes(buffer)) for buffer in buffers])
    for part, data in zip(parts, datas, strict=True):
        pieces = source.pieces(*part)
        assert b"".join(bytes(piece) for piece in pieces) == bytes(data)
        assert all(any(piece.obj is owner for owner in owners) for piece in pieces)
        if not _crosses(part, seams):
            assert len(pieces) == 1
            assert any(data.obj is owner for owner in owners)


# -- send_parts: the bounded pool -----------------------------------------------------


class Meter:
    """Counts parts in flight and records when each starts and ends."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.events: list[tuple[str, int]] = []

    def start(self, index: int) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.events.append(("start", index))

    def end(self, index: int, how: str = "end") -> None:
        self.running -= 1
        self.events.append((how, index))

    def started(self) -> list[int]:
        return [index for what, index in self.events if what == "start"]

    def ended(self, how: str) -> list[int]:
        return [index for what, index in self.events if what == how]


async def _yields(times: int) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


def _others() -> set[asyncio.Task[Any]]:
    """The tasks still there besides the test's own (and the watchdog of `release`)."""
    return {
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task() and task.get_name() != "watchdog"
    }


@pytest.fixture
async def release() -> AsyncIterator[asyncio.Event]:
    """The event parts wait for, which a correct pool never lets them see: it cancels
    them first. Should the pool fail to, a watchdog sets it after many loop turns, so a
    broken pool fails the test's assertions instead of hanging the suite."""
    event = asyncio.Event()

    async def watch() -> None:
        await _yields(1000)
        event.set()

    watchdog = asyncio.get_running_loop().create_task(watch(), name="watchdog")
    yield event
    watchdog.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watchdog


async def test_send_parts_returns_results_in_part_order() -> None:
    meter = Meter()

    async def send(index: int) -> str:
        meter.start(index)
        await _yields(10 - index)  # later parts finish first
        meter.end(index)
        return f"etag-{index}"

    assert await send_parts(10, send, concurrency=10) == [f"etag-{i}" for i in range(10)]
    assert meter.ended("end") == list(range(9, -1, -1))  # they did finish out of order
    assert sorted(meter.started()) == list(range(10))  # each part sent exactly once
    assert not _others()


@pytest.mark.parametrize(("count", "concurrency"), [(10, 3), (7, 1), (3, 8), (5, 5)])
async def test_send_parts_never_has_more_than_the_bound_in_flight(
    count: int, concurrency: int
) -> None:
    meter = Meter()

    async def send(index: int) -> int:
        meter.start(index)
        await _yields(1 + index % 3)  # uneven, so workers take parts out of lockstep
        meter.end(index)
        return index * index

    assert await send_parts(count, send, concurrency=concurrency) == [i * i for i in range(count)]
    assert meter.most == min(count, concurrency)  # the bound, and the bound is used
    assert meter.started() == list(range(count))  # parts are taken in order
    assert meter.running == 0
    assert not _others()


async def test_send_parts_with_one_at_a_time_sends_strictly_in_sequence() -> None:
    meter = Meter()

    async def send(index: int) -> None:
        meter.start(index)
        await _yields(3 - index % 3)
        meter.end(index)

    await send_parts(5, send, concurrency=1)
    assert meter.events == [(what, i) for i in range(5) for what in ("start", "end")]


async def test_send_parts_of_nothing_sends_nothing() -> None:
    async def send(index: int) -> None:
        raise AssertionError(f"part {index} sent")

    assert await send_parts(0, send, concurrency=4) == []


def _send_failing(
    meter: Meter, failing: set[int], release: asyncio.Event, cleanup: int = 3
) -> Callable[[int], Awaitable[int]]:
    """Parts that wait for ``release`` (which never comes) unless they are ``failing``;
    a cancelled part takes ``cleanup`` loop turns to clean up, like aborting a request."""

    async def send(index: int) -> int:
        meter.start(index)
        try:
            await _yields(1)
            if index in failing:
                meter.end(index, "failed")
                raise OSError(f"part {index} failed")
            await release.wait()
        except asyncio.CancelledError:
            await _yields(cleanup)
            meter.end(index, "cancelled")
            raise
        meter.end(index)
        return index

    return send


async def test_a_failing_part_cancels_and_awaits_the_others_before_raising(
    release: asyncio.Event,
) -> None:
    meter = Meter()
    with pytest.raises(OSError, match="part 1 failed"):
        await send_parts(10, _send_failing(meter, {1}, release), concurrency=3)
    # By the time the error arrives, the parts in flight were cancelled and finished
    # their cleanup, no further part was started, and no task is left running.
    assert meter.started() == [0, 1, 2]
    assert meter.ended("failed") == [1]
    assert sorted(meter.ended("cancelled")) == [0, 2]
    assert meter.running == 0
    assert not _others()


async def test_the_error_is_the_parts_own_exception() -> None:
    error = ConnectionResetError("the part's own")

    async def send(index: int) -> None:
        if index == 2:
            raise error

    with pytest.raises(ConnectionResetError) as raised:
        await send_parts(4, send, concurrency=2)
    assert raised.value is error


async def test_a_part_failing_later_stops_the_pool() -> None:
    meter = Meter()
    release = asyncio.Event()
    release.set()  # the parts that do not fail complete after one loop turn

    with pytest.raises(OSError, match="part 4 failed"):
        await send_parts(50, _send_failing(meter, {4}, release), concurrency=2)
    started = meter.started()
    assert started == list(range(len(started)))
    # The failure stops the pool at once: besides parts 0 to 4, only the part the other
    # worker had in hand was started, and every part it did start has ended (sent,
    # failed or cancelled) before the error arrived.
    assert len(started) <= 4 + 1 + 1
    assert sorted(meter.ended("end") + meter.ended("failed") + meter.ended("cancelled")) == started
    assert meter.running == 0
    assert not _others()


async def test_several_parts_failing_at_once_leave_no_exception_unretrieved(
    release: asyncio.Event,
) -> None:
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    meter = Meter()
    try:
        with pytest.raises(OSError, match="failed"):
            await send_parts(6, _send_failing(meter, {0, 1, 2}, release), concurrency=3)
        assert sorted(meter.ended("failed")) == [0, 1, 2]
        assert not _others()
        gc.collect()
        await _yields(3)
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert [context.get("message") for context in seen] == []


async def test_cancelling_the_caller_cancels_and_awaits_the_parts(
    release: asyncio.Event,
) -> None:
    meter = Meter()
    upload = asyncio.ensure_future(
        send_parts(5, _send_failing(meter, set(), release), concurrency=2)
    )
    await _yields(3)
    assert meter.started() == [0, 1]
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert sorted(meter.ended("cancelled")) == [0, 1]
    assert meter.started() == [0, 1]
    assert meter.running == 0
    assert not _others()


async def test_send_parts_needs_a_concurrency_of_at_least_one() -> None:
    async def send(index: int) -> int:
        return index

    with pytest.raises(ValueError, match="concurrency of at least 1, got 0"):
        await send_parts(3, send, concurrency=0)


def test_a_view_that_is_not_contiguous_is_cut_from_a_copy() -> None:
    data = bytes(range(20))
    strided = memoryview(data)[::2]
    views = byte_views([strided])
    assert [bytes(view) for view in views] == [data[::2]]
