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
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import google_crc32c

from moorage.buffers import BytesLike

__all__ = [
    "CRC32C",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SHA256",
    "PayloadCheck",
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


_extend: Callable[[int, bytes], int] = google_crc32c.extend


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
