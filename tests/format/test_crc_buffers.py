"""CRC-32C over payload buffers of every kind and size: large buffers are checksummed a
slice at a time (`moorage.format.integrity`), which must give exactly the CRC-32C of
the bytes, wherever the slices fall."""

from __future__ import annotations

import array
import os
import pickle
from collections.abc import Callable

import google_crc32c
import pytest

from moorage.buffers import BytesLike
from moorage.format import integrity
from moorage.format.integrity import PayloadCheck, checksum_of, crc32c

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
