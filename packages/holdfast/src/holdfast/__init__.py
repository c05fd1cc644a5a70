"""holdfast: durable results for Python.

The public surface is small and imports fast; heavier pieces load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from holdfast.errors import (
    ConfigurationError,
    HoldfastError,
    InvalidKey,
    LockError,
    PluginError,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
    SerializationError,
    StorageError,
)
from holdfast.plugins import hookimpl

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "HoldfastError",
    "InvalidKey",
    "LockError",
    "PluginError",
    "RecordCorrupted",
    "RecordExpired",
    "RecordNotFound",
    "ResultRecord",
    "ResultRecordMetadata",
    "ResultStore",
    "SerializationError",
    "Serializer",
    "StorageError",
    "__version__",
    "hookimpl",
]

if TYPE_CHECKING:
    from holdfast.records import ResultRecord, ResultRecordMetadata
    from holdfast.serializers import Serializer
    from holdfast.store import ResultStore

_LAZY = {
    "ResultStore": "holdfast.store",
    "ResultRecord": "holdfast.records",
    "ResultRecordMetadata": "holdfast.records",
    "Serializer": "holdfast.serializers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'holdfast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
