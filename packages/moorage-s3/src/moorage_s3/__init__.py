"""moorage-s3: ``s3://bucket/prefix`` storage on s3fs (aiobotocore).

Registers the ``s3`` scheme, and ``s3a`` as an alias, for storages and for the
object-store lock manager (`moorage.locking.objects`). Point it at AWS, or
at any S3-compatible service with ``endpoint_url`` (or ``AWS_ENDPOINT_URL_S3``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moorage.locking.objects import object_lock_factory
from moorage.plugins import hookimpl, lazy_exports
from moorage.plugins.known import known_factory

if TYPE_CHECKING:
    from moorage_s3.options import S3Options
    from moorage_s3.storage import S3Storage

__all__ = ["S3Options", "S3Storage", "register_lock_managers", "register_storages"]

# The client library loads when a URL of these schemes is first used, not with the registry.
__getattr__ = lazy_exports(__name__, {"S3Options": "options", "S3Storage": "storage"})
_factory = known_factory("storage", "s3")


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``s3://`` and ``s3a://`` URLs with `S3Storage`."""
    for scheme in ("s3", "s3a"):
        register(scheme, _factory)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Serve ``s3://`` and ``s3a://`` lock-manager URLs with the object-store lock manager
    (`moorage.locking.objects.ObjectStoreLockManager`) on `S3Storage`: the locks live in
    the bucket itself, under ``.moorage-locks/`` below the URL."""
    lock_factory = object_lock_factory(_factory)
    for scheme in ("s3", "s3a"):
        register(scheme, lock_factory)
