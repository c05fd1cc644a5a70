"""Compression libraries by name (the ``compressionlib`` of a compressed serializer),
streamed compression of payload parts, and bounded decompression.

The standard library's ``zlib``, ``lzma`` and ``bz2`` are always there; ``zstd`` (the
zstandard package) and ``lz4`` are imported when first named, and a missing one is a
`SerializationError` that says what to install. Decompression is incremental and capped,
so a few bytes claiming gigabytes are refused (`RecordCorrupted`) before the memory is
taken. Nothing here knows about serializers or records: the compressed serializers and
the Prefect format both use it.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from moorage.buffers import BytesLike
from moorage.errors import RecordCorrupted, SerializationError

__all__ = ["COMPRESSION_LIBRARIES", "compress_parts", "compression_functions", "decompress_bounded"]

#: Decompressed output is produced at most this many bytes at a time.
_OUT_CHUNK = 1 << 20

Compress = Callable[..., bytes]
Decompress = Callable[..., bytes]


def _zstd() -> tuple[Compress, Decompress]:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise SerializationError(
            "compressionlib 'zstd' needs the zstandard package: pip install zstandard"
        ) from exc
    return zstandard.ZstdCompressor().compress, zstandard.ZstdDecompressor().decompress


def _lz4() -> tuple[Compress, Decompress]:
    try:
        import lz4.frame  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise SerializationError(
            "compressionlib 'lz4' needs the lz4 package: pip install lz4"
        ) from exc
    return lz4.frame.compress, lz4.frame.decompress


def _module(name: str) -> Callable[[], tuple[Compress, Decompress]]:
    """A standard library compressor's functions; lzma and bz2 are imported when first
    named (about a millisecond each at import otherwise)."""

    def functions() -> tuple[Compress, Decompress]:
        mod = importlib.import_module(name)  # one of the three names below
        return mod.compress, mod.decompress

    return functions


#: Every ``compressionlib`` name, and how to get its functions.
COMPRESSION_LIBRARIES: dict[str, Callable[[], tuple[Compress, Decompress]]] = {
    "zlib": _module("zlib"),
    "lzma": _module("lzma"),
    "bz2": _module("bz2"),
    "zstd": _zstd,
    "zstandard": _zstd,
    "lz4": _lz4,
}


def compression_functions(lib: str) -> tuple[Compress, Decompress]:
    """``(compress, decompress)`` for a compression library name."""
    factory = COMPRESSION_LIBRARIES.get(lib)
    if factory is None:
        known = ", ".join(sorted(COMPRESSION_LIBRARIES))
        raise SerializationError(f"unknown compressionlib {lib!r}; use one of {known}")
    return factory()


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
        import lzma

        return lzma.LZMADecompressor()
    if lib == "bz2":
        import bz2

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
        import lzma

        compressor = lzma.LZMACompressor()
    elif lib == "bz2":
        import bz2

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
