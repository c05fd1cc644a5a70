"""moorage-local: local filesystem storage and file locks, the embedded default.

Registers the ``file`` scheme for storages (``file:///abs/folder`` URLs and plain paths)
and for lock managers (``file:///abs/folder``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.plugins import hookimpl
from moorage_local.locking import FileLockManager
from moorage_local.storage import LocalStorage

__all__ = ["FileLockManager", "LocalStorage", "register_lock_managers", "register_storages"]


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``file://`` URLs and plain paths with `LocalStorage`."""
    register("file", LocalStorage)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``file:///dir`` with `FileLockManager`."""
    register("file", FileLockManager)
