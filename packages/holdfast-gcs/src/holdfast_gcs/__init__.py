"""holdfast-gcs: ``gs://bucket/prefix`` and ``gcs://bucket/prefix`` storage on gcsfs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from holdfast.plugins import hookimpl
from holdfast_gcs.options import GCSOptions
from holdfast_gcs.storage import GCSStorage

__all__ = ["GCSOptions", "GCSStorage", "register_storages"]


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``gs://`` and ``gcs://`` URLs with `GCSStorage`."""
    for scheme in GCSStorage.schemes:
        register(scheme, GCSStorage)
