"""The one exception hierarchy of holdfast.

Every error raised by holdfast or by a backend plugin derives from `HoldfastError`.
Messages name what failed (the key, the backend's URL) and what to do about it.
Backends wrap their client library's exceptions in one of these classes, keeping the
original as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "HoldfastError",
    "InvalidKey",
    "LockError",
    "PluginError",
    "RecordCorrupted",
    "RecordExpired",
    "RecordNotFound",
    "SerializationError",
    "StorageError",
]


class HoldfastError(Exception):
    """Base class of every error raised by holdfast and its plugins."""


class StorageError(HoldfastError):
    """A storage backend failed to read, write, list or delete."""


class RecordNotFound(StorageError, KeyError):
    """No record (or payload) is stored under the key.

    Also a `KeyError`, so ``except KeyError`` keeps working for dict-like use.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RecordExpired(HoldfastError):
    """The record exists but its expiration has passed."""


class RecordCorrupted(HoldfastError):
    """The stored bytes are not a valid record: truncated, checksum or signature mismatch."""


class InvalidKey(HoldfastError, ValueError):
    """A storage key is not a relative, ``/``-separated path inside the storage root."""


class SerializationError(HoldfastError):
    """A value could not be serialized, or a payload could not be deserialized."""


class ConfigurationError(HoldfastError):
    """Settings or arguments do not describe a usable configuration."""


class LockError(HoldfastError):
    """A lock could not be taken, released or honoured."""


class PluginError(ConfigurationError):
    """A plugin is missing, broken, or two plugins claim the same name."""
