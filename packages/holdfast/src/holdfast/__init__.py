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

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Flow",
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
    "Task",
    "Transaction",
    "__version__",
    "flow",
    "hookimpl",
    "task",
]

if TYPE_CHECKING:
    from holdfast.plugins import hookimpl
    from holdfast.records import ResultRecord, ResultRecordMetadata
    from holdfast.serializers import Serializer
    from holdfast.store import ResultStore
    from holdfast.tasks import Flow, Task, flow, task
    from holdfast.transactions import Transaction

_LAZY = {
    "hookimpl": "holdfast.plugins",
    "ResultStore": "holdfast.store",
    "ResultRecord": "holdfast.records",
    "ResultRecordMetadata": "holdfast.records",
    "Serializer": "holdfast.serializers",
    "Task": "holdfast.tasks",
    "Flow": "holdfast.tasks",
    "task": "holdfast.tasks",
    "flow": "holdfast.tasks",
    "Transaction": "holdfast.transactions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'holdfast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
