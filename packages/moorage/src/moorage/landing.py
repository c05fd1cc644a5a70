"""Storages and lock managers once per process and configuration.

A Dask or Ray worker unpickles the task it runs, and with it the store, the storage and
the lock manager, for every call. Each would then open new clients (an S3 session, a
Redis connection pool) per call. `land` is what those objects unpickle through: it
returns the process's live object of equal configuration where there is one, so a
worker builds its clients once and reuses them. Equality is the objects' own (class and
configuration, secrets included), so two configurations never share a client.

What `moorage.plugins.resolve` builds from a URL is shared the same way (`adopt`): a
task rebuilt on a worker for every call, naming its storage or lock manager by URL,
finds the process's object again. Objects made by their constructors are never
shared. A forked child inherits the table; the objects in it rebuild their clients
after a fork themselves (each compares ``os.getpid()``).
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

__all__ = ["adopt", "forget_landed", "land"]

_T = TypeVar("_T")

#: The objects unpickled in this process, and those built from URLs, each its own key
#: (hashed and compared by configuration). Two tables, so that a copy unpickled where
#: its original lives is still a copy. One entry per configuration: a process uses few.
_landed: dict[Any, Any] = {}
_built: dict[Any, Any] = {}
_lock = threading.Lock()


def land(cls: type[_T], state: dict[str, Any]) -> _T:
    """Unpickle an object of ``cls`` from its ``__getstate__``: the process's live equal
    object if one arrived before, else this one (which later arrivals then share)."""
    arrived = cls.__new__(cls)
    arrived.__setstate__(state)  # type: ignore[attr-defined]
    return _shared(_landed, arrived)


def adopt(obj: _T) -> _T:
    """The live object equal to ``obj`` that was built from a URL before, else ``obj``
    (then shared from now on)."""
    return _shared(_built, obj)


def _shared(table: dict[Any, Any], obj: _T) -> _T:
    try:
        with _lock:
            found: _T = table.setdefault(obj, obj)
    except TypeError:  # an option that cannot be hashed: keep this one to itself
        return obj
    return found


def forget_landed() -> None:
    """Drop every shared object (for tests that count clients from a clean start)."""
    with _lock:
        _landed.clear()
        _built.clear()
