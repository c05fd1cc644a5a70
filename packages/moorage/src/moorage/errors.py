"""The one exception hierarchy of moorage.

Every error raised by moorage or by a backend plugin derives from `MoorageError`.
Messages name what failed (the key, the backend's URL) and what to do about it.
Backends wrap their client library's exceptions in one of these classes, keeping the
original as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "ClassNotAllowed",
    "ConfigurationError",
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


class ClassNotAllowed(SerializationError):
    """A payload names a class its reader does not allow (see ``json_allowed_classes``).

    Reading never imports a module or builds a class because data names it: only the
    standard value types and the classes the reader's configuration allows are built."""


class ConfigurationError(MoorageError):
    """Settings or arguments do not describe a usable configuration."""


class LockError(MoorageError):
    """A lock could not be taken, released or honoured."""


class PluginError(ConfigurationError):
    """A plugin is missing, broken, or two plugins claim the same name."""


@contextmanager
def map_exceptions(translate: Callable[[Exception], MoorageError | None]) -> Iterator[None]:
    """The one place where a backend's exceptions become ours.

    An exception raised inside the block is passed to ``translate``; what it returns is
    raised instead, with the original as ``__cause__``. A `MoorageError` passes through
    untouched, and so does an exception ``translate`` returns None for (a bug, say, that
    should surface as itself). Works around ``await`` too: the block may be async code.
    """
    try:
        yield
    except MoorageError:
        raise
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc
