"""moorage-azure: Azure Blob Storage for moorage, on adlfs and the Azure SDK.

Registers the ``az``, ``abfs`` and ``abfss`` storage schemes:
``az://container/prefix``, ``abfs://container@account.dfs.core.windows.net/prefix``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.locking.objects import object_lock_factory
from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_azure.options import AzureConfig
    from moorage_azure.storage import AzureStorage

__all__ = ["AzureConfig", "AzureStorage", "register_lock_managers", "register_storages"]

# The client library loads when a URL of these schemes is first used, not with the registry.
__getattr__ = lazy_exports(__name__, {"AzureConfig": "options", "AzureStorage": "storage"})
_factory = known_factory("storage", "az")


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``az://``, ``abfs://`` and ``abfss://`` URLs with `AzureStorage`."""
    for scheme in ("az", "abfs", "abfss"):
        register(scheme, _factory)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``az://``, ``abfs://`` and ``abfss://`` lock-manager URLs with the
    object-store lock manager (`moorage.locking.objects.ObjectStoreLockManager`) on
    `AzureStorage`: the locks live in the container itself, under ``.moorage-locks/``
    below the URL."""
    lock_factory = object_lock_factory(_factory)
    for scheme in ("az", "abfs", "abfss"):
        register(scheme, lock_factory)
