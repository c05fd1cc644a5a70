"""The core's own plugin: registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.locking import MemoryLockManager
from moorage.plugins.hookspecs import hookimpl
from moorage.serializers.compressed import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
)
from moorage.serializers.json_serializer import JSONSerializer
from moorage.serializers.pickle_serializer import PickleSerializer
from moorage.storage import MemoryStorage

__all__ = ["register_lock_managers", "register_serializers", "register_storages"]


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("memory", MemoryStorage)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("memory", MemoryLockManager)


@hookimpl
def register_serializers(register: Callable[[str, type[Any]], None]) -> None:
    for cls in (
        PickleSerializer,
        JSONSerializer,
        CompressedSerializer,
        CompressedPickleSerializer,
        CompressedJSONSerializer,
    ):
        register(cls.type_name(), cls)
