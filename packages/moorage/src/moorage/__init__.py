"""moorage: durable results for Python.

The public surface is small and imports fast; heavier pieces load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moorage.errors import (
    ClassNotAllowed,
    ConfigurationError,
    InvalidKey,
    LockError,
    MoorageError,
    PayloadMissing,
    PluginError,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
    SerializationError,
    StorageError,
    WriteConflict,
)

__version__ = "0.1.0"

__all__ = [
    "ClassNotAllowed",
    "ConfigurationError",
    "Flow",
    "InvalidKey",
    "LockError",
    "MoorageError",
    "PayloadMissing",
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
    "Task",
    "Transaction",
    "WriteConflict",
    "__version__",
    "flow",
    "hookimpl",
    "task",
]

if TYPE_CHECKING:
    from moorage.plugins import hookimpl
    from moorage.records import ResultRecord, ResultRecordMetadata
    from moorage.serializers import Serializer
    from moorage.store import ResultStore
    from moorage.tasks import Flow, Task, flow, task
    from moorage.transactions import Transaction

_LAZY = {
    "hookimpl": "moorage.plugins",
    "ResultStore": "moorage.store",
    "ResultRecord": "moorage.records",
    "ResultRecordMetadata": "moorage.records",
    "Serializer": "moorage.serializers",
    "Task": "moorage.tasks",
    "Flow": "moorage.tasks",
    "task": "moorage.tasks",
    "flow": "moorage.tasks",
    "Transaction": "moorage.transactions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'moorage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
