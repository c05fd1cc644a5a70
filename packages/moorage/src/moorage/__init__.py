"""moorage: durable results for Python.

The public surface is small and imports fast; heavier pieces load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moorage.errors import (
    ClassNotAllowed,
    ConfigurationError,
    DecodeRefused,
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
    UnhashableValue,
    WriteConflict,
)
from moorage.faces import lazy_exports
from moorage.version import __version__

__all__ = [
    "ClassNotAllowed",
    "ConfigurationError",
    "DecodeRefused",
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
    "UnhashableValue",
    "WriteConflict",
    "__version__",
    "flow",
    "hookimpl",
    "task",
]

if TYPE_CHECKING:
    from moorage.format.record import ResultRecord
    from moorage.plugins.hookspecs import hookimpl
    from moorage.records.metadata import ResultRecordMetadata
    from moorage.serializers.base import Serializer
    from moorage.store.store import ResultStore
    from moorage.store.transaction import Transaction
    from moorage.workflow.flows import Flow, flow
    from moorage.workflow.tasks import Task, task

_LAZY = {
    "hookimpl": "moorage.plugins.hookspecs",
    "ResultStore": "moorage.store.store",
    "ResultRecord": "moorage.format.record",
    "ResultRecordMetadata": "moorage.records.metadata",
    "Serializer": "moorage.serializers.base",
    "Task": "moorage.workflow.tasks",
    "Flow": "moorage.workflow.flows",
    "task": "moorage.workflow.tasks",
    "flow": "moorage.workflow.flows",
    "Transaction": "moorage.store.transaction",
}

__getattr__ = lazy_exports(__name__, _LAZY)
