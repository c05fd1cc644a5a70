"""moorage-gcs: ``gs://bucket/prefix`` and ``gcs://bucket/prefix`` storage on gcsfs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.locking.objects import object_lock_factory
from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_gcs.options import GCSOptions
    from moorage_gcs.storage import GCSStorage

__all__ = ["GCSOptions", "GCSStorage", "register_lock_managers", "register_storages"]

# The client library loads when a URL of these schemes is first used, not with the registry.
__getattr__ = lazy_exports(__name__, {"GCSOptions": "options", "GCSStorage": "storage"})
_factory = known_factory("storage", "gs")


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``gs://`` and ``gcs://`` URLs with `GCSStorage`."""
    for scheme in ("gs", "gcs"):
        register(scheme, _factory)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``gs://`` and ``gcs://`` lock-manager URLs with the object-store lock manager
    (`moorage.locking.objects.ObjectStoreLockManager`) on `GCSStorage`: the locks live in
    the bucket itself, under ``.moorage-locks/`` below the URL."""
    lock_factory = object_lock_factory(_factory)
    for scheme in ("gs", "gcs"):
        register(scheme, lock_factory)
