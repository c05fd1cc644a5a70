"""moorage-gcs: ``gs://bucket/prefix`` and ``gcs://bucket/prefix`` storage on gcsfs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_gcs.options import GCSOptions
    from moorage_gcs.storage import GCSStorage

__all__ = ["GCSOptions", "GCSStorage", "register_storages"]

# The client library loads when a URL of these schemes is first used, not with the registry.
__getattr__ = lazy_exports(__name__, {"GCSOptions": "options", "GCSStorage": "storage"})
_factory = known_factory("storage", "gs")


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``gs://`` and ``gcs://`` URLs with `GCSStorage`."""
    for scheme in ("gs", "gcs"):
        register(scheme, _factory)
