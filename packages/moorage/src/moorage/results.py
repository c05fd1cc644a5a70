"""The module API, following ``prefect.results`` name for name.

Everything here works without an orchestrator: defaults come from settings
(`moorage.config.settings`), the "current" store and persistence flag from the run context
kept in contextvars by the workflow layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from moorage.config.settings import get_settings
from moorage.format.record import ResultRecord
from moorage.plugins.catalog import default_serializer
from moorage.plugins.resolve import storage_from
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer
from moorage.serializers.fields import coerce_serializer
from moorage.storage import Storage
from moorage.store.context import current_context
from moorage.store.defaults import default_cache, get_default_result_storage
from moorage.store.store import DEFAULT_STORAGE_KEY_FN, ResultStore

if TYPE_CHECKING:
    from moorage.store.persisted import PersistedResult

__all__ = [
    "DEFAULT_STORAGE_KEY_FN",
    "PersistedResult",
    "ResultRecord",
    "ResultRecordMetadata",
    "ResultSerializer",
    "ResultStorage",
    "ResultStore",
    "aget_default_result_storage",
    "aresolve_result_storage",
    "default_cache",
    "get_default_persist_setting",
    "get_default_persist_setting_for_tasks",
    "get_default_result_serializer",
    "get_default_result_storage",
    "get_or_create_default_task_scheduling_storage",
    "get_result_store",
    "resolve_result_storage",
    "resolve_serializer",
    "result_storage_discriminator",
    "should_persist_result",
]

#: What `resolve_result_storage` accepts.
ResultStorage = Storage | Path | str
#: What `resolve_serializer` accepts.
ResultSerializer = Serializer | str


async def aget_default_result_storage() -> Storage:
    return get_default_result_storage()


def resolve_result_storage(result_storage: ResultStorage) -> Storage:
    """A storage object for a storage, a `Path`, a URL, or a named storage from settings.

    Anything else raises `TypeError` listing what is accepted.
    """
    return storage_from(result_storage)


async def aresolve_result_storage(result_storage: ResultStorage) -> Storage:
    return resolve_result_storage(result_storage)


def resolve_serializer(serializer: ResultSerializer) -> Serializer:
    """A serializer for a serializer object or a type name (``"json"``)."""
    if not isinstance(serializer, (Serializer, str)):
        raise TypeError(
            "a result serializer must be a Serializer or a type name such as 'pickle' or "
            f"'json'; got {type(serializer).__name__}"
        )
    return coerce_serializer(serializer)


def get_default_result_serializer() -> Serializer:
    """The serializer the ``serializer`` setting names (``pickle`` unless configured)."""
    return default_serializer()


def get_default_persist_setting() -> bool:
    """The ``persist_by_default`` setting (False unless configured)."""
    return get_settings().persist_by_default


def get_default_persist_setting_for_tasks() -> bool:
    """``tasks_default_persist_result``, falling back to ``persist_by_default``."""
    settings = get_settings()
    if settings.tasks_default_persist_result is not None:
        return settings.tasks_default_persist_result
    return settings.persist_by_default


def should_persist_result() -> bool:
    """Whether the running task or flow persists its result; outside one, the settings."""
    context = current_context()
    if context is not None and context.persist_result is not None:
        return context.persist_result
    if context is not None and context.is_task:
        return get_default_persist_setting_for_tasks()
    return get_default_persist_setting()


def get_result_store() -> ResultStore:
    """The running task's or flow's store; outside one, a store with default settings."""
    context = current_context()
    if context is not None and isinstance(context.result_store, ResultStore):
        return context.result_store
    return ResultStore()


def get_or_create_default_task_scheduling_storage() -> Storage:
    """Storage for task parameters: ``task_scheduling_storage``, else the default storage."""
    settings = get_settings()
    if settings.task_scheduling_storage is not None:
        return storage_from(settings.task_scheduling_storage, settings)
    return get_default_result_storage()


def result_storage_discriminator(rs: Any) -> str:
    """A tag for a storage value, for pydantic discriminated unions: the storage's
    class name for objects, ``"str"``/``"Path"`` for references."""
    if isinstance(rs, Storage):
        return type(rs).__name__
    if isinstance(rs, Path):
        return "Path"
    if isinstance(rs, dict):
        return str(rs.get("type", "dict"))
    return type(rs).__name__


def __getattr__(name: str) -> Any:
    # PersistedResult, deprecated as in Prefect 3, loads on first use: most programs
    # importing this module never touch it.
    if name == "PersistedResult":
        from moorage.store.persisted import PersistedResult

        globals()[name] = PersistedResult
        return PersistedResult
    raise AttributeError(f"module 'moorage.results' has no attribute {name!r}")
