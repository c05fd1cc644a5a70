"""The one way a serializer's failure becomes a `SerializationError`.

Serializers call libraries (pickle, orjson, msgpack, compressors) that fail with their own
exceptions. Each such call runs inside `serialization_errors`, which raises a
`SerializationError` with a message saying what could not be done, and keeps the
library's exception as ``__cause__``. Our own errors (`SerializationError`, and
`~moorage.errors.RecordCorrupted` from bounded decompression) pass through unchanged,
as `moorage.errors.map_exceptions` lets them.

It wraps every ``loads`` and ``dumps``, so it is a plain class rather than a generator
context manager: entering and leaving it costs a fraction of a microsecond.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Literal

from moorage.errors import MoorageError, SerializationError

__all__ = ["serialization_errors"]


# Lowercase: it reads as a function, ``with serialization_errors(...)``.
class serialization_errors:
    """A block whose exceptions become ``SerializationError(describe(exc))``."""

    __slots__ = ("_describe",)

    def __init__(self, describe: Callable[[Exception], str]) -> None:
        self._describe = describe

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if not isinstance(exc, Exception) or isinstance(exc, MoorageError):
            return False  # nothing raised, ours already, or not an error (KeyboardInterrupt)
        raise SerializationError(self._describe(exc)) from exc
