"""holdfast-azure: Azure Blob Storage for holdfast, on adlfs and the Azure SDK.

Registers the ``az``, ``abfs`` and ``abfss`` storage schemes:
``az://container/prefix``, ``abfs://container@account.dfs.core.windows.net/prefix``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from holdfast.plugins import hookimpl
from holdfast_azure.storage import AzureStorage

__all__ = ["AzureStorage", "register_storages"]


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``az://``, ``abfs://`` and ``abfss://`` URLs with `AzureStorage`."""
    for scheme in AzureStorage.schemes:
        register(scheme, AzureStorage)
