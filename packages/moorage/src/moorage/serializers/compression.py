"""Compression libraries by name: the ``compressionlib`` of a compressed serializer.

The standard library's ``zlib``, ``lzma`` and ``bz2`` are always there; ``zstd`` (the
zstandard package) and ``lz4`` are imported when first named, and a missing one is a
`SerializationError` that says what to install. Nothing here knows about serializers, so
the record format (bounded decompression) and the serializers both take their functions
from this one table.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from types import ModuleType

from moorage.errors import SerializationError

__all__ = ["COMPRESSION_LIBRARIES", "compression_functions"]

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


def _module(mod: ModuleType) -> Callable[[], tuple[Compress, Decompress]]:
    return lambda: (mod.compress, mod.decompress)


#: Every ``compressionlib`` name, and how to get its functions.
COMPRESSION_LIBRARIES: dict[str, Callable[[], tuple[Compress, Decompress]]] = {
    "zlib": _module(zlib),
    "lzma": _module(lzma),
    "bz2": _module(bz2),
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
