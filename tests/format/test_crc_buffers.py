"""CRC-32C over payload buffers of every kind and size: large buffers are checksummed a
slice at a time (`moorage.format.integrity`), which must give exactly the CRC-32C of
the bytes, wherever the slices fall."""

from __future__ import annotations

import array
import itertools
import os
import pickle
from collections.abc import Callable

import google_crc32c
import pytest

from moorage.buffers import BytesLike
from moorage.format import integrity
from moorage.format.integrity import PayloadCheck, RunningCRC32C, checksum_of, crc32c

CHUNK = integrity._COPY_CHUNK
SMALL = integrity._SMALL
#: Sizes around the one-call limit and the slice boundaries.
SIZES = [0, 1, SMALL - 1, SMALL, SMALL + 1, 3 * CHUNK + SMALL, 5 * SMALL + 7]

Wrap = Callable[[bytes], BytesLike]
WRAPS: dict[str, Wrap] = {
    "bytes": lambda data: data,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "read-only slice of bytes": lambda data: memoryview(b"ab" + data + b"cd")[2:-2],
    "slice of bytearray": lambda data: memoryview(bytearray(b"ab" + data + b"cd"))[2:-2],
    "pickle buffer": lambda data: pickle.PickleBuffer(bytearray(data)).raw(),
}


def expected(data: bytes, crc: int = 0) -> int:
    return int(google_crc32c.extend(crc, data))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("wrap", WRAPS.values(), ids=list(WRAPS))
def test_crc_of_one_buffer_is_the_crc_of_its_bytes(wrap: Wrap, size: int) -> None:
    data = os.urandom(size)
    assert crc32c([wrap(data)]) == expected(data)


def test_wide_items_are_checksummed_as_their_bytes() -> None:
    items = array.array("d", range(SMALL // 8 * 3 + 5))  # a format other than "B"
    assert crc32c([items]) == expected(items.tobytes())


def test_a_two_dimensional_view_is_checksummed_in_memory_order() -> None:
    data = os.urandom(4 * SMALL)
    view = memoryview(data).cast("B", (4, SMALL))
    assert crc32c([view]) == expected(data)


def test_numpy_arrays_in_either_order_are_checksummed_as_their_memory() -> None:
    numpy = pytest.importorskip("numpy")
    c_order = numpy.random.default_rng(1).random((512, 300))  # 1.2 MB, above SMALL
    fortran = numpy.asfortranarray(c_order)
    assert crc32c([c_order]) == expected(c_order.tobytes(order="C"))
    assert crc32c([pickle.PickleBuffer(fortran).raw()]) == expected(fortran.tobytes(order="F"))


def test_parts_continue_one_crc_in_order() -> None:
    parts = [os.urandom(n) for n in (10, SMALL + 3, 0, CHUNK * 2 + 1, 5)]
    joined = b"".join(parts)
    mixed: list[BytesLike] = [
        parts[0],
        bytearray(parts[1]),
        parts[2],
        memoryview(parts[3]),
        parts[4],
    ]
    assert crc32c(mixed) == expected(joined)
    start = expected(b"prefix")
    assert crc32c(mixed, start) == expected(joined, start)
    assert crc32c(reversed(mixed)) != expected(joined)


def test_checksum_and_payload_check_agree_on_large_parts() -> None:
    parts = [os.urandom(SMALL + 11), bytearray(os.urandom(2 * CHUNK + 1))]
    checksum = checksum_of(parts)
    assert checksum == f"crc32c:{expected(bytes(parts[0]) + bytes(parts[1])):08x}"
    check = PayloadCheck(checksum)
    for part in parts:
        check.update(memoryview(part))
    assert check.matches()
    assert check.length == len(parts[0]) + len(parts[1])
    parts[1][CHUNK] ^= 1  # one bit, in the second slice of a large part
    assert checksum_of(parts) != checksum


# -- RunningCRC32C: spans just written, read where they lie ---------------------------

SPAN_WRAPS: dict[str, Wrap] = {
    "bytes": lambda data: data,
    "bytearray": bytearray,
    "read-only slice of bytes": lambda data: memoryview(b"ab" + data + b"cd")[2:-2],
    "writable slice": lambda data: memoryview(bytearray(b"ab" + data + b"cd"))[2:-2],
}
#: Span bounds: in-place spans (powers of two from 4 KiB), tails shorter than that, and
#: spans that start at odd offsets.
CUTS = [0, 1, 4096, 4097, 3 * 4096 + 5, CHUNK + 77, 2 * CHUNK + 4095, 3 * CHUNK + 1]


def flat(data: BytesLike) -> memoryview:
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


@pytest.mark.parametrize("wrap", SPAN_WRAPS.values(), ids=list(SPAN_WRAPS))
def test_spans_in_order_give_the_crc_of_the_bytes(wrap: Wrap) -> None:
    data = os.urandom(CUTS[-1])
    view = flat(wrap(data))
    crc = RunningCRC32C()
    for start, stop in itertools.pairwise(CUTS):
        crc.update_span(view, start, stop)
        assert crc.value == expected(data[:stop])
    assert crc.checksum() == checksum_of([data])


@pytest.mark.parametrize("wrap", SPAN_WRAPS.values(), ids=list(SPAN_WRAPS))
def test_update_takes_whole_buffers_in_order(wrap: Wrap) -> None:
    parts = [os.urandom(n) for n in (5, 3 * 4096 + 1, 0, CHUNK)]
    crc = RunningCRC32C(expected(b"before"))
    for part in parts:
        crc.update(wrap(part))
    assert crc.value == expected(b"".join(parts), expected(b"before"))


def test_spans_of_wide_items_and_arrays_are_their_bytes() -> None:
    items = array.array("d", range(3 * 4096 + 3))
    crc = RunningCRC32C()
    crc.update(items)
    assert crc.value == expected(items.tobytes())
    numpy = pytest.importorskip("numpy")
    fortran = numpy.asfortranarray(numpy.random.default_rng(2).random((128, 100)))
    view = flat(pickle.PickleBuffer(fortran).raw())
    crc = RunningCRC32C()
    crc.update_span(view, 0, 12345)
    crc.update_span(view, 12345, view.nbytes)
    assert crc.value == expected(fortran.tobytes(order="F"))


def test_a_changed_byte_in_a_span_read_in_place_changes_the_crc() -> None:
    data = bytearray(os.urandom(2 * 4096))
    before = RunningCRC32C()
    before.update_span(memoryview(data), 0, len(data))
    data[4096 + 17] ^= 0x40
    after = RunningCRC32C()
    after.update_span(memoryview(data), 0, len(data))
    assert after.value == expected(bytes(data))
    assert after.value != before.value
