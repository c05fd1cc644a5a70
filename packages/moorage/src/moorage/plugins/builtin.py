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

__all__ = [
    "HASHERS",
    "register_hashers",
    "register_lock_managers",
    "register_serializers",
    "register_storages",
]


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


#: The data libraries' hashers, by the names of their types and functions: nothing is
#: imported until a value of the type is hashed (see `moorage.keys.hashers`).
_LIBRARIES = "moorage.keys.libraries"
HASHERS: tuple[tuple[str, str], ...] = (
    ("numpy.ndarray", f"{_LIBRARIES}.numpy_arrays:hash_array"),
    ("numpy.generic", f"{_LIBRARIES}.numpy_arrays:hash_scalar"),
    ("pandas.DataFrame", f"{_LIBRARIES}.pandas_frames:hash_frame"),
    ("pandas.Series", f"{_LIBRARIES}.pandas_frames:hash_series"),
    ("pandas.Index", f"{_LIBRARIES}.pandas_frames:hash_index"),
    ("pandas.api.extensions.ExtensionArray", f"{_LIBRARIES}.pandas_frames:hash_extension_array"),
    ("polars.DataFrame", f"{_LIBRARIES}.polars_frames:hash_frame"),
    ("polars.Series", f"{_LIBRARIES}.polars_frames:hash_series"),
    ("pyarrow.Table", f"{_LIBRARIES}.arrow_tables:hash_table"),
    ("pyarrow.RecordBatch", f"{_LIBRARIES}.arrow_tables:hash_table"),
    ("pyarrow.Array", f"{_LIBRARIES}.arrow_tables:hash_array"),
    ("pyarrow.ChunkedArray", f"{_LIBRARIES}.arrow_tables:hash_array"),
)


@hookimpl
def register_hashers(register: Callable[[Any, Any], None]) -> None:
    for type_name, hasher in HASHERS:
        register(type_name, hasher)
