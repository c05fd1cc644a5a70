"""What a store uses when nothing is given: each default read from the settings when a
store is made (`moorage.config.settings`), plus the process-wide memory cache, the
default key function and the default lock holder name."""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from typing import Literal

from moorage.config.settings import get_settings
from moorage.locking import LockManager
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.storage import Storage
from moorage.store.memory_cache import ResultCache

__all__ = [
    "DEFAULT_STORAGE_KEY_FN",
    "default_accept_unsigned_prefect",
    "default_cache",
    "default_format",
    "default_lock_manager",
    "default_max_payload_bytes",
    "default_metadata_storage",
    "default_signing_key",
    "generate_default_holder",
    "get_default_result_storage",
]


def DEFAULT_STORAGE_KEY_FN() -> str:
    """A random key: 32 hex characters."""
    return uuid.uuid4().hex


_HOSTNAME = socket.gethostname()


def generate_default_holder() -> str:
    """``host:pid:thread``, plus ``:task-<id>`` inside an asyncio task."""
    holder = f"{_HOSTNAME}:{os.getpid()}:{threading.get_ident()}"
    asyncio = sys.modules.get("asyncio")  # not imported yet: no task can be running
    try:
        task = asyncio.current_task() if asyncio is not None else None
    except RuntimeError:
        task = None
    if task is not None:
        holder += f":task-{id(task):x}"
    return holder


def get_default_result_storage() -> Storage:
    """The storage named by the ``storage`` setting, else local storage at
    ``local_storage_path`` (default ``~/.moorage/storage``)."""
    settings = get_settings()
    if settings.storage is not None:
        return storage_from(settings.storage, settings)
    return storage_from(settings.local_storage_path, settings)


def default_metadata_storage() -> Storage | None:
    name = get_settings().metadata_storage
    return None if name is None else storage_from(name)


def default_lock_manager() -> LockManager | None:
    url = get_settings().lock_manager
    return None if url is None else lock_manager_from(url)


_cache: ResultCache | None = None
_cache_lock = threading.Lock()


def default_cache() -> ResultCache:
    """The process-wide memory cache, sized by ``cache_max_entries`` and ``cache_max_bytes``."""
    global _cache
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                settings = get_settings()
                _cache = ResultCache(settings.cache_max_entries, settings.cache_max_bytes)
    return _cache


def default_signing_key() -> bytes | None:
    return get_settings().signing_key_bytes()


def default_format() -> Literal["moorage", "prefect"]:
    return get_settings().record_format


def default_accept_unsigned_prefect() -> bool:
    return get_settings().accept_unsigned_prefect_records


def default_max_payload_bytes() -> int:
    return get_settings().max_payload_bytes
