"""The hooks a moorage plugin may implement, and the pluggy markers for them.

Each hook is handed a ``register`` callback and calls it once per name it serves:

```python
import moorage

@moorage.hookimpl
def register_storages(register):
    register("mystore", MyStorage)   # factory(url, **options) -> Storage
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "register_hashers",
    "register_lock_managers",
    "register_serializers",
    "register_storages",
]

#: pluggy's project name, shared by the markers and the plugin manager.
PROJECT = "moorage"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register storage factories: ``register(scheme, factory)``.

    ``factory(url, **options)`` returns a `moorage.storage.base.Storage`. One plugin may
    register several schemes.
    """


@hookspec
def register_serializers(register: Callable[[str, type[Any]], None]) -> None:
    """Register serializer classes: ``register(type_name, serializer_class)``."""


@hookspec
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register lock-manager factories: ``register(scheme, factory)``.

    ``factory(url, hold_timeout=..., **options)`` returns a
    `moorage.locking.base.LockManager`.
    """


@hookspec
def register_hashers(register: Callable[[Any, Any], None]) -> None:
    """Teach cache keys about types: ``register(type_or_predicate, hasher)``.

    ``type_or_predicate`` is a class, a class's dotted name (``"mylib.Grid"``: nothing
    is imported until a value of it is hashed) or ``predicate(value) -> bool``.
    ``hasher(value)`` returns a representation that moorage hashes (bytes, a
    ``memoryview``, str, numbers, tuples, lists, dicts, or values with hashers of their
    own), or is given as ``"module:function"``, imported on first use. See
    `moorage.keys.hashers`.
    """
