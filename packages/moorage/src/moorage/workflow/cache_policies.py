"""Cache policies: how a task's cache key is made from its call.

A policy turns a `CacheContext` (the function, its bound parameters) into a key, or
None for "do not cache this call". Policies combine with ``+`` (the key depends on each
part) and `Inputs` drops parameters with ``-``:

```python
from moorage.workflow.cache_policies import INPUTS, TASK_SOURCE, CacheKeyFn

policy = INPUTS - "verbose" + TASK_SOURCE
by_day = CacheKeyFn(lambda ctx, params: params["day"].isoformat())
```

`DEFAULT` is ``INPUTS + TASK_SOURCE``: a call with equal inputs to an unchanged function
finds the stored result, in this process or any other. A policy also carries the
storage options a task's store takes from it (`key_storage`, `lock_manager`,
`isolation_level`; see `ResultStore.update_for_task`); set them with `configure`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import types
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from moorage.locking import IsolationLevel
from moorage.workflow.hashing import stable_hash

__all__ = [
    "DEFAULT",
    "INPUTS",
    "NO_CACHE",
    "TASK_SOURCE",
    "CacheContext",
    "CacheKeyFn",
    "CachePolicy",
    "CompoundCachePolicy",
    "Inputs",
    "NoCache",
    "TaskSource",
    "source_key",
    "uses_source",
]


@dataclass(slots=True)
class CacheContext:
    """What a policy may look at: the function and the call's bound parameters.

    One is made for every call of a task, so it is a plain slotted class (a frozen
    dataclass costs several times more to build); policies must not change it.
    """

    fn: Callable[..., Any]
    parameters: Mapping[str, Any]
    task: Any = None


@dataclass(frozen=True)
class CachePolicy:
    """Base class: subclasses implement `compute_key`."""

    key_storage: Any = field(default=None, kw_only=True)
    lock_manager: Any = field(default=None, kw_only=True)
    isolation_level: IsolationLevel | None = field(default=None, kw_only=True)

    def compute_key(self, context: CacheContext) -> str | None:
        """The cache key for this call, or None to run it uncached."""
        raise NotImplementedError

    def key_material(self, context: CacheContext) -> Any:
        """What this policy adds to a compound policy's key (None: nothing): its key,
        unless it has something cheaper that identifies the call as well."""
        return self.compute_key(context)

    def configure(
        self,
        *,
        key_storage: Any = None,
        lock_manager: Any = None,
        isolation_level: IsolationLevel | str | None = None,
    ) -> Self:
        """A copy with these storage options (those given replace the current ones)."""
        changes: dict[str, Any] = {}
        if key_storage is not None:
            changes["key_storage"] = key_storage
        if lock_manager is not None:
            changes["lock_manager"] = lock_manager
        if isolation_level is not None:
            changes["isolation_level"] = IsolationLevel(isolation_level)
        return dataclasses.replace(self, **changes)

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(self, NoCache) or isinstance(other, NoCache):
            return NO_CACHE
        return CompoundCachePolicy(
            policies=(*_parts(self), *_parts(other)),
            key_storage=other.key_storage or self.key_storage,
            lock_manager=other.lock_manager or self.lock_manager,
            isolation_level=other.isolation_level or self.isolation_level,
        )


def _parts(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundCachePolicy) else (policy,)


@dataclass(frozen=True)
class NoCache(CachePolicy):
    """Never cache: every call runs."""

    def compute_key(self, context: CacheContext) -> str | None:
        return None


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The key is a stable hash of the call's parameters, less those in `exclude`."""

    exclude: tuple[str, ...] = ()

    def compute_key(self, context: CacheContext) -> str | None:
        return stable_hash(self.key_material(context))

    def key_material(self, context: CacheContext) -> Any:
        # The parameters themselves: a compound key then hashes them once, not twice.
        parameters = context.parameters
        if self.exclude:
            parameters = {k: v for k, v in parameters.items() if k not in self.exclude}
        return parameters

    def __sub__(self, name: str) -> Inputs:
        return dataclasses.replace(self, exclude=(*self.exclude, name))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The key is a hash of the function's source code, so editing it invalidates.

    The same on the client and on every worker: a task carries its source key when it
    is pickled, and a process that cannot read the source (a function defined in a
    notebook, sent to a Dask or Ray worker) uses the key that travelled with it. See
    `source_key`.
    """

    def compute_key(self, context: CacheContext) -> str | None:
        task = context.task
        if task is not None:
            return str(task.source_key())
        return source_key(context.fn)


#: Each function's source hash, found once per process (the source of a loaded function
#: does not change under it; reading it costs a file read and a tokenizer pass).
_SOURCE_KEYS: weakref.WeakKeyDictionary[Callable[..., Any], str] = weakref.WeakKeyDictionary()


def source_key(fn: Callable[..., Any], travelled: str | None = None) -> str:
    """The hash of ``fn``'s source. Where the source cannot be read here, the key that
    ``travelled`` with a pickled task (computed where the source could be read) is used;
    failing that (a function made by ``exec`` or in ``python -c``), a hash of its
    compiled code and the Python version: stable across processes of one interpreter
    version, and new after an upgrade rather than silently equal to another function's.
    """
    try:
        return _SOURCE_KEYS[fn]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable, not cached
        pass
    unwrapped = inspect.unwrap(fn)
    try:
        key = stable_hash(inspect.getsource(unwrapped))
    except (OSError, TypeError):  # no source here: a notebook cell on a worker, a REPL
        if travelled is not None:
            return travelled
        key = stable_hash("compiled", sys.version_info[:2], _code_material(unwrapped))
    with contextlib.suppress(TypeError):
        _SOURCE_KEYS[fn] = key
    return key


def _code_material(fn: Any) -> Any:
    """What identifies a function without source: its code objects, recursively (the
    bytecode, constants and names), or its qualified name if it has no code."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", type(fn).__qualname__)
    return _code_parts(code)


def _code_parts(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_parts(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames)


def uses_source(policy: CachePolicy) -> bool:
    """Whether ``policy``'s key depends on the task's source (`TaskSource`)."""
    return any(isinstance(part, TaskSource) for part in _parts(policy))


@dataclass(frozen=True)
class CacheKeyFn(CachePolicy):
    """The key is whatever ``key_fn(context, parameters)`` returns (None: uncached)."""

    key_fn: Callable[[CacheContext, Mapping[str, Any]], str | None] = field(
        default=lambda context, parameters: None
    )

    def compute_key(self, context: CacheContext) -> str | None:
        return self.key_fn(context, context.parameters)


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """The key depends on every part's key; parts that return None are left out, and
    the call is uncached only if all of them return None."""

    policies: tuple[CachePolicy, ...] = ()

    def compute_key(self, context: CacheContext) -> str | None:
        parts = [policy.key_material(context) for policy in self.policies]
        present = [part for part in parts if part is not None]
        return stable_hash(*present) if present else None

    def __sub__(self, name: str) -> CompoundCachePolicy:
        parts = tuple(p - name if isinstance(p, Inputs) else p for p in self.policies)
        return dataclasses.replace(self, policies=parts)


NO_CACHE = NoCache()
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
DEFAULT = INPUTS + TASK_SOURCE
