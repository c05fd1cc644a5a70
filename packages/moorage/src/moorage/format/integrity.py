"""Checksums and digests: what lets a reader trust stored bytes.

- CRC-32C (`google-crc32c`) protects a native record's head and, in unsigned records,
  its payload against accidental damage. It is computed over a payload's parts in
  order, never over a joined copy of them.
- SHA-256 is the payload digest of signed records: the head, covered by the MAC, holds
  it, so a payload cannot be swapped for another with the same CRC.

Decompression, bounded so that a few bytes claiming gigabytes are refused before the
memory is taken, is `moorage.serializers.compression.decompress_bounded`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import google_crc32c

from moorage.buffers import BytesLike

__all__ = [
    "CRC32C",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SHA256",
    "PayloadCheck",
    "RunningCRC32C",
    "checksum_of",
    "crc32c",
    "parse_checksum",
]

CRC32C = "crc32c"
SHA256 = "sha256"
#: The checksums a native record may hold: an algorithm, and its lowercase hex digits.
_CHECKSUM = re.compile(r"(crc32c):([0-9a-f]{8})|(sha256):([0-9a-f]{64})")

#: The default `max_payload_bytes` setting: the most bytes a payload whose size no
#: trusted record states (a Prefect record, a raw payload) may decompress to: 1 GiB.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 30

#: Buffers up to this size are checksummed in one call (a non-``bytes`` one after one copy).
_SMALL = 1 << 20
#: Larger buffers go through in copies this large, ``bytes`` included. google-crc32c
#: reads only ``bytes`` (and buffers that need no release), and over a buffer far larger
#: than the CPU caches its loop waits on memory: a 256 MB payload checksummed in place
#: took 50-54 ms on the benchmark machine, copied a slice at a time into a buffer that
#: stays in cache and checksummed there 42-44 ms, for bytes and NumPy buffers alike.
_COPY_CHUNK = 1 << 18


#: google-crc32c's own: it takes ``bytes``, or any buffer that needs no release.
_extend: Callable[[int, object], int] = google_crc32c.extend


def _crc_extend(crc: int, data: BytesLike) -> int:
    if type(data) is bytes and len(data) <= _SMALL:
        return _extend(crc, data)
    view = memoryview(data)
    if view.nbytes <= _SMALL:  # small: one copy is the cheapest way in
        return _extend(crc, view.tobytes())
    view = view.cast("B") if view.ndim != 1 or view.format != "B" else view
    for start in range(0, view.nbytes, _COPY_CHUNK):
        crc = _extend(crc, view[start : start + _COPY_CHUNK].tobytes())
    return crc


#: Spans read in place are powers of two at least this long (ctypes keeps every array
#: type it makes: this bounds them to a few dozen); shorter tails are copied.
_MIN_IN_PLACE = 1 << 12


def _spans(start: int, stop: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` covering ``[start, stop)`` in order: powers of two of at
    least `_MIN_IN_PLACE` bytes, then a shorter tail."""
    while stop - start >= _MIN_IN_PLACE:
        length = 1 << ((stop - start).bit_length() - 1)
        yield start, length
        start += length
    if stop > start:
        yield start, stop - start


def _crc_extend_in_cache(crc: int, view: memoryview, start: int, stop: int) -> int:
    """`_crc_extend` over ``view[start:stop]`` (a flat byte view) that the CPU has just
    written or read, so has in cache: read where it lies, not copied first, which would
    cost as much again as the checksum. google-crc32c reads ``bytes`` and objects whose
    buffer needs no release, such as ctypes arrays: one is laid over the span, through
    the buffer interface where the memory is writable, at the address of the ``bytes``
    object that ``view`` covers whole otherwise (immutable, and alive while ``view``
    is). Read-only memory of other kinds is copied."""
    import ctypes  # here: only large writes need it

    obj = view.obj
    if type(obj) is bytes and view.nbytes == len(obj) and view.c_contiguous:
        if start == 0 and stop == view.nbytes:
            return _extend(crc, obj)
        base = ctypes.cast(ctypes.c_char_p(obj), ctypes.c_void_p).value or 0

        def over(offset: int, length: int) -> object:
            return (ctypes.c_char * length).from_address(base + offset)

    elif not view.readonly and view.c_contiguous:

        def over(offset: int, length: int) -> object:
            return (ctypes.c_char * length).from_buffer(view, offset)

    else:
        return _crc_extend(crc, view[start:stop])
    for offset, length in _spans(start, stop):
        if length < _MIN_IN_PLACE:
            crc = _extend(crc, view[offset : offset + length].tobytes())
        else:
            crc = _extend(crc, over(offset, length))
    return crc


class RunningCRC32C:
    """The CRC-32C of bytes given in order, a span at a time, each just written (so in
    cache): a payload's checksum computed as it is written, instead of in a pass of its
    own over memory before. ``value`` is the CRC so far; `checksum` as a record's
    metadata holds it."""

    __slots__ = ("value",)

    def __init__(self, crc: int = 0) -> None:
        self.value = crc

    def update(self, data: BytesLike, /) -> None:
        """Extend the CRC over all of ``data``."""
        view = memoryview(data)
        view = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        self.value = _crc_extend_in_cache(self.value, view, 0, view.nbytes)

    def update_span(self, view: memoryview, start: int, stop: int, /) -> None:
        """Extend the CRC over ``view[start:stop]``; ``view`` is a flat byte view (format
        ``"B"``, one dimension): `moorage_local.atomic_writes.HeadLast` observes the
        spans of a body's parts with it."""
        self.value = _crc_extend_in_cache(self.value, view, start, stop)

    def checksum(self) -> str:
        """``crc32c:`` and the 8 hex digits of the CRC so far."""
        return f"{CRC32C}:{self.value:08x}"


def crc32c(parts: Iterable[BytesLike], crc: int = 0) -> int:
    """The CRC-32C of ``parts`` in order (continuing from ``crc``), without joining them."""
    for part in parts:
        crc = _crc_extend(crc, part)
    return crc


class _Hasher(Protocol):
    def update(self, data: BytesLike, /) -> None: ...  # pragma: no cover

    def hexdigest(self) -> str: ...  # pragma: no cover


class _CRCHasher:
    __slots__ = ("_crc",)

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: BytesLike, /) -> None:
        self._crc = _crc_extend(self._crc, data)

    def hexdigest(self) -> str:
        return f"{self._crc:08x}"


def _hasher(algorithm: str) -> _Hasher:
    if algorithm == CRC32C:
        return _CRCHasher()
    return hashlib.sha256()


def checksum_of(parts: BytesLike | Iterable[BytesLike], algorithm: str = CRC32C) -> str:
    """The ``checksum`` a native record's metadata holds for a payload (one buffer, or
    its ``parts`` in order): ``crc32c:`` and 8 hex digits, or ``sha256:`` and 64."""
    if isinstance(parts, (bytes, bytearray, memoryview)):
        parts = (parts,)
    hasher = _hasher(algorithm)
    for part in parts:
        hasher.update(part)
    return f"{algorithm}:{hasher.hexdigest()}"


def parse_checksum(value: Any) -> tuple[str, str] | None:
    """``(algorithm, hex digits)`` of a well-formed checksum; None for anything else."""
    if not isinstance(value, str):
        return None
    match = _CHECKSUM.fullmatch(value)
    if match is None:
        return None
    if match[1]:
        return match[1], match[2]
    return match[3], match[4]


class PayloadCheck:
    """Checks payload bytes, fed in order, against a well-formed checksum."""

    __slots__ = ("_algorithm", "_digits", "_hasher", "length")

    def __init__(self, checksum: str) -> None:
        parsed = parse_checksum(checksum)
        if parsed is None:
            raise ValueError(f"not a checksum moorage knows: {checksum!r}")
        self._algorithm, self._digits = parsed
        self._hasher = _hasher(self._algorithm)
        self.length = 0

    def update(self, data: BytesLike) -> None:
        self._hasher.update(data)
        self.length += memoryview(data).nbytes

    def matches(self) -> bool:
        return hmac.compare_digest(self._hasher.hexdigest(), self._digits)
