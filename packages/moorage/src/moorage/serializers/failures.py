"""The one way a serializer's failure becomes a `SerializationError`.

Serializers call libraries (pickle, orjson, msgpack, compressors) that fail with their own
exceptions. Each such call runs inside `serialization_errors`, which raises a
`SerializationError` with a message saying what could not be done, and keeps the
library's exception as ``__cause__``. It is `moorage.errors.map_exceptions` with that
translation, so our own errors (`SerializationError`, and
`~moorage.errors.RecordCorrupted` from bounded decompression) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from moorage.errors import SerializationError, map_exceptions

__all__ = ["serialization_errors"]


def serialization_errors(describe: Callable[[Exception], str]) -> map_exceptions:
    """A block whose exceptions become ``SerializationError(describe(exc))``."""
    return map_exceptions(lambda exc: SerializationError(describe(exc)))
