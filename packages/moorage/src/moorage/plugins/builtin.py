"""The core's own plugin: registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.plugins.registry import hookimpl


@hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from moorage.storage.base import MemoryStorage

    register("memory", MemoryStorage)


@hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from moorage.locking.base import MemoryLockManager

    register("memory", MemoryLockManager)


@hookimpl
def register_serializers(register: Callable[[str, type[Any]], None]) -> None:
    from moorage.serializers import base as serializers

    for cls in (
        serializers.PickleSerializer,
        serializers.JSONSerializer,
        serializers.CompressedSerializer,
        serializers.CompressedPickleSerializer,
        serializers.CompressedJSONSerializer,
    ):
        register(cls.type_name(), cls)
