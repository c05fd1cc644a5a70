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
finds the stored result, in this process or any other. `CODE` is the stricter twin of
`TASK_SOURCE`: it also hashes what the function uses (closures, module globals, the
tasks and same-package functions it calls; see `moorage.keys.code`), so editing a helper
invalidates too. Each policy explains its part of a key (`CachePolicy.explain`).

A policy also carries the storage options a task's store takes from it (`key_storage`,
`lock_manager`, `isolation_level`; see `ResultStore.update_for_task`); set them with
`configure`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from moorage.errors import UnhashableValue
from moorage.keys.code import code_dependencies, code_key
from moorage.keys.encoding import describe, stable_hash
from moorage.keys.explain import KeyPart
from moorage.keys.functions import code_material, qualified_name
from moorage.locking import IsolationLevel

__all__ = [
    "CODE",
    "DEFAULT",
    "INPUTS",
    "NO_CACHE",
    "TASK_SOURCE",
    "CacheContext",
    "CacheKeyFn",
    "CachePolicy",
    "Code",
    "CompoundCachePolicy",
    "Inputs",
    "NoCache",
    "TaskSource",
    "code_kinds",
    "source_key",
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

    def label(self) -> str:
        """The policy as it is written in code (``INPUTS - 'verbose'``)."""
        return type(self).__name__

    def explain(self, context: CacheContext) -> list[KeyPart]:
        """The parts this policy adds to a key, for `moorage.Task.explain_key`."""
        key = self.compute_key(context)
        return [KeyPart(self.label(), "", "the policy's own key", key or "")]

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

    def label(self) -> str:
        return "NO_CACHE"

    def explain(self, context: CacheContext) -> list[KeyPart]:
        return []


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

    def label(self) -> str:
        return "INPUTS" + "".join(f" - {name!r}" for name in self.exclude)

    def explain(self, context: CacheContext) -> list[KeyPart]:
        parts = []
        for name in sorted(context.parameters):
            value = context.parameters[name]
            if name in self.exclude:
                parts.append(KeyPart("parameter", name, "left out of the key", ""))
                continue
            try:
                parts.append(KeyPart("parameter", name, describe(value), stable_hash(value)))
            except UnhashableValue as exc:
                parts.append(KeyPart("parameter", name, f"cannot be hashed: {exc}", ""))
        return parts


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The key is a hash of the function's source code, so editing it invalidates.

    The same on the client and on every worker: a task carries its source key when it
    is pickled, and a process that cannot read the source (a function defined in a
    notebook, sent to a Dask or Ray worker) uses the key that travelled with it. See
    `source_key`.
    """

    #: Which of a task's code keys this policy uses (a task keeps and carries each).
    kind: ClassVar[str] = "source"

    def compute_key(self, context: CacheContext) -> str | None:
        task = context.task
        if task is not None:
            return str(task.source_key(self.kind))
        return self.function_key(context.fn)

    def function_key(self, fn: Callable[..., Any], travelled: str | None = None) -> str:
        """The key of ``fn`` itself; ``travelled``: the one computed where the task was
        pickled, used where this process cannot read the source."""
        return source_key(fn, travelled)

    def label(self) -> str:
        return "TASK_SOURCE"

    def explain(self, context: CacheContext) -> list[KeyPart]:
        key = self.compute_key(context) or ""
        how = "the function's source text"
        if not _readable(context.fn):
            how = "no source here: the key computed where the task was sent from, or its code"
        return [KeyPart("task source", qualified_name(inspect.unwrap(context.fn)), how, key)]


@dataclass(frozen=True)
class Code(TaskSource):
    """Like `TASK_SOURCE`, and also what the function uses: its closures, the module
    globals it reads, and the source of the tasks and same-package functions it calls,
    followed to a bounded depth (see `moorage.keys.code`). Editing a helper the task
    calls invalidates its records; editing an unrelated function does not.

    Computed once per process per function (a global rebound at run time is not seen),
    and carried with a pickled task like `TASK_SOURCE`'s key.
    """

    kind: ClassVar[str] = "code"

    def function_key(self, fn: Callable[..., Any], travelled: str | None = None) -> str:
        if travelled is not None and not _readable(fn):
            return travelled
        return code_key(fn)

    def label(self) -> str:
        return "CODE"

    def explain(self, context: CacheContext) -> list[KeyPart]:
        key = self.compute_key(context) or ""
        fn = inspect.unwrap(context.fn)
        parts = [KeyPart("code", qualified_name(fn), "the function and what it uses", key)]
        task = context.task
        if task is not None and task.source_key(self.kind) != code_key(fn):
            return parts  # the key travelled from where the source was read: no parts here
        for dep in code_dependencies(fn):
            how = dep.kind + (f", used by {dep.used_by}" if dep.used_by else "")
            parts.append(
                KeyPart("code", dep.name, how + (f"; {dep.note}" if dep.note else ""), dep.digest)
            )
        return parts


def _readable(fn: Callable[..., Any]) -> bool:
    """Whether this process can read ``fn``'s source."""
    try:
        inspect.getsource(inspect.unwrap(fn))
    except (OSError, TypeError):
        return False
    return True


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
        key = stable_hash("compiled", sys.version_info[:2], code_material(unwrapped))
    with contextlib.suppress(TypeError):
        _SOURCE_KEYS[fn] = key
    return key


def code_kinds(policy: CachePolicy) -> dict[str, TaskSource]:
    """The code keys ``policy``'s key depends on (`TaskSource`'s, `Code`'s), by kind."""
    return {part.kind: part for part in _parts(policy) if isinstance(part, TaskSource)}


@dataclass(frozen=True)
class CacheKeyFn(CachePolicy):
    """The key is whatever ``key_fn(context, parameters)`` returns (None: uncached)."""

    key_fn: Callable[[CacheContext, Mapping[str, Any]], str | None] = field(
        default=lambda context, parameters: None
    )

    def compute_key(self, context: CacheContext) -> str | None:
        return self.key_fn(context, context.parameters)

    def label(self) -> str:
        return f"cache_key_fn {qualified_name(self.key_fn)}"

    def explain(self, context: CacheContext) -> list[KeyPart]:
        key = self.compute_key(context)
        how = "returned by the function" if key is not None else "returned None: uncached"
        return [KeyPart("cache_key_fn", qualified_name(self.key_fn), how, key or "")]


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """The key depends on every part's key; parts that return None are left out, and
    the call is uncached only if all of them return None."""

    policies: tuple[CachePolicy, ...] = ()

    def compute_key(self, context: CacheContext) -> str | None:
        present = []
        for policy in self.policies:  # a loop, not two comprehensions: every call asks
            part = policy.key_material(context)
            if part is not None:
                present.append(part)
        return stable_hash(*present) if present else None

    def __sub__(self, name: str) -> CompoundCachePolicy:
        parts = tuple(p - name if isinstance(p, Inputs) else p for p in self.policies)
        return dataclasses.replace(self, policies=parts)

    def label(self) -> str:
        return " + ".join(policy.label() for policy in self.policies)

    def explain(self, context: CacheContext) -> list[KeyPart]:
        return [part for policy in self.policies for part in policy.explain(context)]


NO_CACHE = NoCache()
INPUTS = Inputs()
TASK_SOURCE = TaskSource()
CODE = Code()
DEFAULT = INPUTS + TASK_SOURCE
