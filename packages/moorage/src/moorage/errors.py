"""The one exception hierarchy of moorage.

Every error raised by moorage or by a backend plugin derives from `MoorageError`.
Messages name what failed (the key, the backend's URL) and what to do about it.
Backends wrap their client library's exceptions in one of these classes, keeping the
original as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeAlias

__all__ = [
    "ClassNotAllowed",
    "ConfigurationError",
    "DecodeRefused",
    "InvalidKey",
    "LockError",
    "MoorageError",
    "PayloadMissing",
    "PluginError",
    "RecordCorrupted",
    "RecordExpired",
    "RecordNotFound",
    "SerializationError",
    "StorageError",
    "Translate",
    "UnhashableValue",
    "WriteConflict",
    "map_exceptions",
]


class MoorageError(Exception):
    """Base class of every error raised by moorage and its plugins."""


class StorageError(MoorageError):
    """A storage backend failed to read, write, list or delete."""


class RecordNotFound(StorageError, KeyError):
    """No record (or payload) is stored under the key.

    Also a `KeyError`, so ``except KeyError`` keeps working for dict-like use.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class WriteConflict(StorageError):
    """A conditional write found the key taken: ``if_absent=True`` and bytes are already
    stored there, or ``if_version=...`` and the object changed (or went) since that
    version was read. Nothing was written."""


class PayloadMissing(RecordNotFound):
    """A record's metadata is stored but its payload is not (split records): the record
    cannot be read, and a task recomputes it."""


class RecordExpired(MoorageError):
    """The record exists but its expiration has passed."""


class RecordCorrupted(MoorageError):
    """The stored bytes are not a valid record: truncated, checksum or signature mismatch."""


class InvalidKey(MoorageError, ValueError):
    """A storage key is not a relative, ``/``-separated path inside the storage root."""


class SerializationError(MoorageError):
    """A value could not be serialized, or a payload could not be deserialized."""


class DecodeRefused(MoorageError):
    """A read did not decode a record's value because the reader's check of its
    serializer (``ResultStore.read(key, allow=...)``) refused it: nothing was decoded."""


class ClassNotAllowed(SerializationError):
    """A payload names a class its reader does not allow (see ``json_allowed_classes``).

    Reading never imports a module or builds a class because data names it: only the
    standard value types and the classes the reader's configuration allows are built."""


class ConfigurationError(MoorageError):
    """Settings or arguments do not describe a usable configuration."""


class LockError(MoorageError):
    """A lock could not be taken, released or honoured."""


class UnhashableValue(MoorageError, TypeError):
    """A value has no stable hash for a cache key: no hasher knows its type, and it
    cannot be pickled or holds nothing but its identity. A task then runs uncached.

    ``path`` lists where the value sat inside what was hashed (a parameter's name,
    then dict keys), outermost first; it is filled in as the error leaves the encoding.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.path: list[Any] = []


class PluginError(ConfigurationError):
    """A plugin is missing, broken, or two plugins claim the same name."""


#: What turns a backend's exception into ours: a `MoorageError` to raise in its place,
#: or None to let it pass as it is.
Translate: TypeAlias = Callable[[Exception], "MoorageError | None"]


class map_exceptions:  # lowercase: used like the function it stands for
    """The one place where a backend's exceptions become ours::

        with map_exceptions(partial(self._error, "read", key)):
            data = client.get(key)

    An exception raised inside the block is passed to ``translate``; what it returns is
    raised instead, with the original as ``__cause__``. A `MoorageError` passes through
    untouched, and so does an exception ``translate`` returns None for (a bug, say, that
    should surface as itself). The block may ``await``. A small class rather than a
    generator context manager: it wraps every storage and lock call, and entering and
    leaving it this way costs a third as much.
    """

    __slots__ = ("_translate",)

    def __init__(self, translate: Translate) -> None:
        self._translate = translate

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, MoorageError):
            return False
        mapped = self._translate(exc)
        if mapped is None:
            return False
        raise mapped from exc
