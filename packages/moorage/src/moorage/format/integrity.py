"""Checksums, digests and bounded decompression: what lets a reader trust stored bytes.

- CRC-32C (`google-crc32c`) protects a native record's head and, in unsigned records,
  its payload against accidental damage. It is computed over a payload's parts in
  order, never over a joined copy of them.
- SHA-256 is the payload digest of signed records: the head, covered by the MAC, holds
  it, so a payload cannot be swapped for another with the same CRC.
- Decompression is incremental and capped, so a few bytes claiming gigabytes are refused
  before the memory is taken.
"""

from __future__ import annotations

import bz2
import hashlib
import hmac
import lzma
import re
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import google_crc32c

from moorage.buffers import BytesLike
from moorage.errors import RecordCorrupted, SerializationError

__all__ = [
    "CRC32C",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SHA256",
    "PayloadCheck",
    "checksum_of",
    "compress_parts",
    "crc32c",
    "decompress_bounded",
    "parse_checksum",
]

CRC32C = "crc32c"
SHA256 = "sha256"
#: The checksums a native record may hold: an algorithm, and its lowercase hex digits.
_CHECKSUM = re.compile(r"(crc32c):([0-9a-f]{8})|(sha256):([0-9a-f]{64})")

#: The default `max_payload_bytes` setting: the most bytes a payload whose size no
#: trusted record states (a Prefect record, a raw payload) may decompress to: 1 GiB.
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 30

#: google-crc32c reads only ``bytes``: other buffers go through in copies this large.
_COPY_CHUNK = 1 << 20
#: Decompressed output is produced at most this many bytes at a time.
_OUT_CHUNK = 1 << 20


_extend: Callable[[int, bytes], int] = google_crc32c.extend


def _crc_extend(crc: int, data: BytesLike) -> int:
    if type(data) is bytes:
        return _extend(crc, data)
    view = memoryview(data)
    if view.nbytes <= _COPY_CHUNK:  # small: one copy is the cheapest way in
        return _extend(crc, view.tobytes())
    if type(view.obj) is bytes and view.c_contiguous and view.nbytes == len(view.obj):
        return _extend(crc, view.obj)
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


# -- bounded decompression -------------------------------------------------------------


class _Decompressor(Protocol):
    """What zlib, lzma and bz2 decompressor objects share (zlib's is adapted)."""

    @property
    def eof(self) -> bool: ...  # pragma: no cover

    @property
    def unused_data(self) -> bytes: ...  # pragma: no cover

    def decompress(self, data: BytesLike, max_length: int = -1) -> bytes: ...  # pragma: no cover


class _Zlib:
    """zlib's decompressobj with the lzma/bz2 calling convention: input not consumed
    because the output was full is kept, and fed again on the next call."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj()
        self._pending = b""

    @property
    def eof(self) -> bool:
        return bool(self._d.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._d.unused_data)

    @property
    def needs_input(self) -> bool:
        return not self._pending

    def decompress(self, data: BytesLike, max_length: int = -1) -> bytes:
        feed = self._pending + bytes(data) if self._pending else data
        out = self._d.decompress(feed, max_length)
        self._pending = self._d.unconsumed_tail
        return out


def _decompressor(lib: str) -> Any:
    if lib == "zlib":
        return _Zlib()
    if lib == "lzma":
        return lzma.LZMADecompressor()
    if lib == "bz2":
        return bz2.BZ2Decompressor()
    if lib == "lz4":
        try:
            import lz4.frame  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            return None  # compression_functions explains what to install
        return lz4.frame.LZ4FrameDecompressor()
    return None


def _zstd_bounded(data: BytesLike, limit: int, why: str) -> bytearray | None:
    """zstd: the frame states its size (refused past ``limit`` before decompressing), or
    the output buffer is bounded. None when zstandard is not installed."""
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    frame = bytes(data)
    try:
        size = zstandard.frame_content_size(frame)
        if size > limit:
            raise _too_large("zstd", limit, why)
        bound = limit + 1 if size < 0 else 0
        out = zstandard.ZstdDecompressor().decompress(frame, max_output_size=bound)
    except RecordCorrupted:
        raise
    except Exception as exc:
        if _zstd_exceeds(zstandard, frame, limit):  # the bounded buffer was too small
            raise _too_large("zstd", limit, why) from exc
        raise SerializationError(f"could not decompress the payload with zstd: {exc!r}") from exc
    return bytearray(out)


def _zstd_exceeds(zstandard: Any, frame: bytes, limit: int) -> bool:
    """Whether ``frame`` decompresses to more than ``limit`` bytes, counted a chunk at a
    time (zstd reports a full output buffer and a truncated frame alike)."""
    total = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(frame)
        while total <= limit and (chunk := reader.read(_OUT_CHUNK)):
            total += len(chunk)
    except Exception:
        return False
    return total > limit


def _too_large(lib: str, limit: int, why: str) -> RecordCorrupted:
    return RecordCorrupted(
        f"its {lib}-compressed payload decompresses to more than {limit} bytes, {why}; it "
        "was refused before the memory was taken"
    )


def decompress_bounded(
    lib: str,
    data: BytesLike,
    limit: int,
    *,
    why: str,
    exact: bool = False,
) -> bytearray:
    """Decompress ``data`` with ``lib`` (zlib, lzma or bz2), producing at most ``limit``
    bytes; `RecordCorrupted` as soon as the output would pass it (with ``exact``, also
    when it falls short). ``why`` says where the limit comes from, for the message.

    lz4 is decompressed incrementally too; zstd within a bounded buffer (or not at all
    when its frame states a larger size). Other libraries are decompressed whole, then
    measured.
    """
    decompressor = _decompressor(lib)
    zstd = _zstd_bounded(data, limit, why) if lib in ("zstd", "zstandard") else None
    if zstd is not None:
        out = zstd
    elif decompressor is None:
        # Deferred: importing the serializers package imports this module.
        from moorage.serializers.compression import compression_functions

        _, decompress = compression_functions(lib)
        out = bytearray(decompress(bytes(data)))
        if len(out) > limit:
            raise _too_large(lib, limit, why)
    else:
        out = _run(decompressor, lib, data, limit, why)
    if exact and len(out) != limit:
        raise RecordCorrupted(
            f"its {lib}-compressed payload decompresses to {len(out)} bytes, where its "
            f"metadata says {limit}"
        )
    return out


def _run(decompressor: Any, lib: str, data: BytesLike, limit: int, why: str) -> bytearray:
    out = bytearray()
    feed: BytesLike = data
    try:
        while True:
            room = limit + 1 - len(out)
            chunk = decompressor.decompress(feed, min(_OUT_CHUNK, room))
            feed = b""
            out += chunk
            if len(out) > limit:
                raise _too_large(lib, limit, why)
            if decompressor.eof:
                break
            if decompressor.needs_input and not chunk:
                raise SerializationError(
                    f"could not decompress the payload with {lib}: the compressed data ends early"
                )
    except (RecordCorrupted, SerializationError):
        raise
    except Exception as exc:
        raise SerializationError(f"could not decompress the payload with {lib}: {exc!r}") from exc
    if decompressor.unused_data:
        raise SerializationError(
            f"could not decompress the payload with {lib}: "
            f"{len(decompressor.unused_data)} bytes follow the compressed data"
        )
    return out


def compress_parts(lib: str, parts: Iterable[BytesLike]) -> tuple[list[bytes], int] | None:
    """Compress ``parts`` in order with ``lib`` (zlib, lzma or bz2) without joining them:
    the compressed chunks and the uncompressed length. None for other libraries."""
    compressor: Any
    if lib == "zlib":
        compressor = zlib.compressobj()
    elif lib == "lzma":
        compressor = lzma.LZMACompressor()
    elif lib == "bz2":
        compressor = bz2.BZ2Compressor()
    else:
        return None
    out: list[bytes] = []
    length = 0
    for part in parts:
        length += memoryview(part).nbytes
        chunk = compressor.compress(part)
        if chunk:
            out.append(chunk)
    out.append(compressor.flush())
    return out, length
