"""The table of hashers: how cache keys hash values of types moorage does not know.

A hasher turns a value into a *representation* that `moorage.keys.encoding` hashes
in its canonical way: bytes, a C-contiguous ``memoryview`` (hashed without a copy),
str, int, float, None, tuples, lists, dicts, or any other value with a hasher of its
own (a DataFrame's hasher may return NumPy arrays). Two values whose hasher returns
equal representations get equal keys; each representation is tagged with the hasher's
name, so a DataFrame never shares a key with the tuple its hasher returned.

Hashers are registered for a type, for the dotted name of a type (``"numpy.ndarray"``:
the entry waits until that module is imported, so registering never imports a library)
or for a predicate (``callable(value) -> bool``, asked only when no type matches):

```python
from moorage.keys import register_hasher

register_hasher("mylib.Grid", lambda grid: (grid.shape, grid.cells.tobytes()))
```

A hasher itself may also be given as ``"package.module:function"``, imported the first
time a value of its type is hashed; the built-in ones (NumPy, pandas, polars, pyarrow)
are registered so, by the core's plugin, and a plugin registers its own through the
``register_hashers`` hook. The most specific type in a value's MRO wins; for the same
type, the last registration wins (plugins load after the built-ins, and
`register_hasher` after both).
"""

from __future__ import annotations

import importlib
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moorage.keys import files, objects

__all__ = ["Hasher", "HasherEntry", "HasherTable", "hasher_table", "register_hasher"]

#: A hasher: value -> representation (see the module docstring).
Hasher = Callable[[Any], Any]


@dataclass
class HasherEntry:
    """One registration: what it matches, the hasher (or its import path) and who
    registered it (shown by `moorage explain`)."""

    matches: type | str | Callable[[Any], bool]
    target: Hasher | str
    plugin: str
    #: Registration order: for one type, the later registration wins.
    order: int = 0
    _loaded: Hasher | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """What the hasher is for, as an explanation names it."""
        what = self.matches
        if isinstance(what, type):
            name = _type_name(what)
        elif isinstance(what, str):
            name = what
        else:
            name = getattr(what, "__qualname__", repr(what))
        return f"{name} hasher ({self.plugin})"

    def hasher(self) -> Hasher:
        found = self._loaded
        if found is None:
            target = self.target
            if isinstance(target, str):
                module, _, attribute = target.partition(":")
                found = getattr(importlib.import_module(module), attribute)
            else:
                found = target
            self._loaded = found
        return found


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class HasherTable:
    """Hashers by type, by dotted type name and by predicate, with a cache per type."""

    def __init__(self) -> None:
        self._by_type: dict[type, HasherEntry] = {}
        #: Dotted names whose module is not imported yet: resolved when it is.
        self._waiting: dict[str, HasherEntry] = {}
        self._predicates: list[HasherEntry] = []
        self._found: weakref.WeakKeyDictionary[type, HasherEntry | None] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._count = 0

    def register(
        self,
        matches: type | str | Callable[[Any], bool],
        hasher: Hasher | str,
        plugin: str = "registered at run time",
    ) -> None:
        """Hash values matched by ``matches`` with ``hasher`` (see the module docstring)."""
        if isinstance(hasher, str):
            if ":" not in hasher:
                raise TypeError(f"a hasher given by name is 'module:function', got {hasher!r}")
        elif not callable(hasher):
            raise TypeError(f"a hasher is a callable or 'module:function', got {hasher!r}")
        with self._lock:
            self._count += 1
            entry = HasherEntry(matches, hasher, plugin, self._count)
            if isinstance(matches, type):
                self._by_type[matches] = entry
            elif isinstance(matches, str):
                if "." not in matches:
                    raise TypeError(f"a type given by name is 'module.Class', got {matches!r}")
                self._waiting[matches] = entry
            elif callable(matches):
                self._predicates.append(entry)
            else:
                raise TypeError(
                    f"hashers are registered for a type, a type's name or a "
                    f"predicate, got {matches!r}"
                )
            self._found.clear()

    def find(self, value: Any) -> HasherEntry | None:
        """The entry that hashes ``value``, or None."""
        cls = type(value)
        try:
            entry = self._found[cls]
        except KeyError:
            entry = self._for_type(cls)
        if entry is None and self._predicates:
            for candidate in reversed(self._predicates):
                if _matches(candidate, value):
                    return candidate
        return entry

    def _for_type(self, cls: type) -> HasherEntry | None:
        with self._lock:
            self._resolve_waiting()
            entry = next((self._by_type[c] for c in cls.__mro__ if c in self._by_type), None)
            self._found[cls] = entry
        return entry

    def _resolve_waiting(self) -> None:
        """Move names whose module is now imported to the table of types: a value of
        such a type exists only once its module is imported, so nothing is imported
        here. A name that does not resolve (a typo, a class moved) stays waiting."""
        for name, entry in list(self._waiting.items()):
            module_name, _, qualname = name.rpartition(".")
            module = sys.modules.get(module_name)
            if module is None:
                continue
            found: Any = module
            for part in qualname.split("."):
                found = getattr(found, part, None)
            if isinstance(found, type):
                del self._waiting[name]
                current = self._by_type.get(found)
                if current is None or current.order < entry.order:
                    self._by_type[found] = entry


def _matches(entry: HasherEntry, value: Any) -> bool:
    """Whether a predicate entry takes ``value``; a predicate that raises does not."""
    predicate: Any = entry.matches
    try:
        return bool(predicate(value))
    except Exception:
        return False


_table: HasherTable | None = None
_table_source: object = None  # the plugin registry the table was built from
_table_lock = threading.Lock()


def _own(table: HasherTable) -> None:
    """The hashers of the keys layer itself: files, and classes that list their fields."""
    table.register(files.FileContent, files.hash_file_content, "moorage")
    table.register(files.FileStat, files.hash_file_stat, "moorage")
    table.register(objects.is_pydantic_model, objects.hash_pydantic, "moorage")
    table.register(objects.is_dataclass_instance, objects.hash_dataclass, "moorage")
    table.register(objects.is_attrs_instance, objects.hash_attrs, "moorage")


def hasher_table() -> HasherTable:
    """The process's table, built on the first value of a type the encoding does not
    know: the keys layer's own hashers, then the plugins' (the plugin registry loads
    then), then those given to `register_hasher`."""
    global _table, _table_source
    # Deferred: settings and the registry cost ~150 ms to import, and values of the
    # common types are hashed without them.
    from moorage.plugins.registry import get_registry

    registry = get_registry()  # loaded on first use, then a global read
    table = _table
    if table is None or _table_source is not registry:  # first use, or plugins reloaded
        with _table_lock:
            if _table is None or _table_source is not registry:
                built = HasherTable()
                _own(built)
                for registration in registry.hashers:
                    built.register(*registration)
                _table, _table_source = built, registry
            table = _table
    return table


def register_hasher(matches: type | str | Callable[[Any], bool], hasher: Hasher | str) -> None:
    """Teach cache keys about a type, in this process (a plugin's ``register_hashers``
    hook does it wherever the plugin is installed)."""
    hasher_table().register(matches, hasher)


def forget_hashers() -> None:
    """Drop the table; the next hash builds it again from the plugins (for tests, and
    when the plugin registry is reset)."""
    global _table, _table_source
    with _table_lock:
        _table = _table_source = None
