"""The backends moorage knows of, installed or not: one table, as fsspec keeps.

Each entry names what serves a scheme or serializer type: the import path of its class
(``module:Attribute``, imported only when used) and what to install to get it. The
backends' plugins register `known_factory` for their schemes, so their client libraries
load on first use; a name looked up and registered by no loaded plugin gets its install
command from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from moorage.plugins.lazy import lazy_factory

__all__ = ["KNOWN", "Kind", "Known", "known", "known_factory"]

#: What a plugin may register.
Kind = Literal["storage", "serializer", "lock_manager"]


@dataclass(frozen=True)
class Known:
    """One implementation moorage knows of."""

    #: ``module:Attribute``: the class, imported only when first used.
    target: str
    #: The requirement that installs it, as ``pip install`` takes it.
    install: str


_S3 = Known("moorage_s3.storage:S3Storage", "moorage[s3]")
_GCS = Known("moorage_gcs.storage:GCSStorage", "moorage[gcs]")
_AZURE = Known("moorage_azure.storage:AzureStorage", "moorage[azure]")
_OBJECT_LOCKS = "moorage.locking.objects:ObjectStoreLockManager"
_REDIS = Known("moorage_redis.locking:RedisLockManager", "moorage[redis]")

#: By kind and name (scheme or serializer type).
KNOWN: dict[tuple[Kind, str], Known] = {
    ("storage", "file"): Known("moorage_local.storage:LocalStorage", "moorage-local"),
    ("lock_manager", "file"): Known("moorage_local.locking:FileLockManager", "moorage-local"),
    ("storage", "s3"): _S3,
    ("storage", "s3a"): _S3,
    ("storage", "gs"): _GCS,
    ("storage", "gcs"): _GCS,
    ("storage", "az"): _AZURE,
    ("storage", "abfs"): _AZURE,
    ("storage", "abfss"): _AZURE,
    ("lock_manager", "s3"): Known(_OBJECT_LOCKS, "moorage[s3]"),
    ("lock_manager", "s3a"): Known(_OBJECT_LOCKS, "moorage[s3]"),
    ("lock_manager", "gs"): Known(_OBJECT_LOCKS, "moorage[gcs]"),
    ("lock_manager", "gcs"): Known(_OBJECT_LOCKS, "moorage[gcs]"),
    ("lock_manager", "az"): Known(_OBJECT_LOCKS, "moorage[azure]"),
    ("lock_manager", "abfs"): Known(_OBJECT_LOCKS, "moorage[azure]"),
    ("lock_manager", "abfss"): Known(_OBJECT_LOCKS, "moorage[azure]"),
    ("lock_manager", "redis"): _REDIS,
    ("lock_manager", "rediss"): _REDIS,
    ("lock_manager", "redis+sentinel"): _REDIS,
    ("lock_manager", "rediss+sentinel"): _REDIS,
    ("lock_manager", "redis+cluster"): _REDIS,
    ("lock_manager", "rediss+cluster"): _REDIS,
    ("serializer", "msgpack"): Known(
        "moorage_msgpack.serializer:MsgpackSerializer", "moorage[msgpack]"
    ),
}


def known(kind: Kind, name: str) -> Known | None:
    """What serves ``name`` of ``kind``, if moorage knows of it."""
    return KNOWN.get((kind, name))


def known_factory(kind: Kind, name: str) -> Callable[..., Any]:
    """A factory for the known implementation of ``name``, imported on its first call:
    what a backend's plugin registers (`~moorage.plugins.lazy.lazy_factory`)."""
    entry = KNOWN[(kind, name)]
    return lazy_factory(entry.target)
