"""The ``@moorage.task`` decorator.

```python
import moorage

@moorage.task(cache_expiration=dt.timedelta(days=1))
def fetch(day: dt.date) -> bytes: ...
```

A call of a task computes its cache key from the call (see `moorage.workflow.cache_policies`)
and reads the record committed under it: a hit costs that one read, with or without
locks. Only a miss opens a transaction on the key, which checks again and either reads
what another caller committed meanwhile or runs the function and commits its return
value. A function that raises stores nothing. Async functions get the same behaviour
with ``await``.

Exactly once: when the task's store has a lock manager (``MOORAGE_LOCK_MANAGER``, the
store's ``lock_manager`` or the cache policy's) and the policy leaves the isolation
level unset, a miss takes the key's lock before checking again (SERIALIZABLE), so the
function runs at most once per key across threads, processes and machines; its commit
is still conditional, so a holder whose lock lapsed during a long run cannot replace a
newer result. A policy that sets ``isolation_level=READ_COMMITTED`` never locks: equal
calls arriving together may then each run, and one commit wins.

A flow is a function that sets defaults for the tasks it calls: its result storage,
serializer, ``persist_result`` and ``cache_result_in_memory`` reach them through the run
context (`moorage.store.context`), which is also what `moorage.results.get_result_store`
and `should_persist_result` read.

The decisions (parameters, store, key, whether to persist) are plain functions shared
by the sync and async call paths; only the transaction's ``with`` differs.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import inspect
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from moorage.config.settings import MoorageSettings, get_settings
from moorage.errors import (
    PayloadMissing,
    RecordCorrupted,
    RecordExpired,
    RecordNotFound,
    SerializationError,
    UnhashableValue,
)
from moorage.keys.encoding import stable_hash
from moorage.keys.explain import KeyExplanation, KeyPart
from moorage.locking import IsolationLevel
from moorage.operations import Op, run_async, run_sync
from moorage.store.context import RunContext, current_context, run_context
from moorage.store.reading import read_op
from moorage.store.store import ResultStore
from moorage.store.transaction import Transaction
from moorage.workflow.cache_policies import (
    CODE,
    DEFAULT,
    NO_CACHE,
    TASK_SOURCE,
    CacheContext,
    CacheKeyFn,
    CachePolicy,
    code_kinds,
)
from moorage.workflow.calls import (
    asks_for_results,
    attribute_path,
    bind,
    importable_as,
    plain_names,
    rebuild,
)

__all__ = ["Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()

logger = logging.getLogger("moorage.tasks")


@dataclass(slots=True)
class _Plan:
    """How one call runs: where its result goes (key None: uncached) and how."""

    store: ResultStore
    parameters: dict[str, Any]
    persist: bool
    key: str | None
    overwrite: bool

    def context(self) -> RunContext:
        """The run context the function body (and a key template) sees."""
        return RunContext(
            result_store=self.store,
            persist_result=self.persist,
            parameters=self.parameters,
            is_task=True,
        )

    def isolation_level(self, chosen: IsolationLevel | None) -> IsolationLevel:
        """The isolation of a miss's transaction: the policy's, else SERIALIZABLE when
        the store has a lock manager (a miss computes once), else READ_COMMITTED."""
        if chosen is not None:
            return chosen
        if self.store.lock_manager is not None:
            return IsolationLevel.SERIALIZABLE
        return IsolationLevel.READ_COMMITTED


#: A stored result that exists but cannot be used: damaged, signed wrongly, a payload
#: gone missing, a class no longer importable or allowed. A task recomputes it.
_UNREADABLE = (RecordCorrupted, SerializationError, PayloadMissing)


def _unreadable(task: Task[Any, Any], key: str, exc: Exception) -> None:
    warnings.warn(
        f"task {task.name!r}: the stored result under {key!r} cannot be read, so it is "
        f"computed again and replaced ({type(exc).__name__}: {exc})",
        RuntimeWarning,
        stacklevel=4,
    )


def _stored_op(task: Task[Any, Any], store: ResultStore, key: str) -> Op[Any]:
    """The committed record under ``key``, or None when there is none to use (missing,
    expired or unreadable, with a warning: the transaction then decides)."""
    try:
        record = yield from read_op(store, key, None, wait=False)
    except _UNREADABLE as exc:
        _unreadable(task, key, exc)
        _explain(task, key, f"miss: the stored record cannot be read ({type(exc).__name__})")
        return None
    except RecordExpired:
        _explain(task, key, "miss: the stored record has expired")
        return None
    except RecordNotFound:
        _explain(task, key, "miss: no record stored")
        return None
    _explain(task, key, "hit from storage")
    return record


def _committed_op(task: Task[Any, Any], txn: Transaction, key: str) -> Op[Any]:
    """The record a transaction found committed at its start, or None (with a warning)
    if it cannot be read: the task then recomputes and the commit replaces it."""
    try:
        record = yield from txn.read_record_op()
    except _UNREADABLE as exc:
        _unreadable(task, key, exc)
        _explain(task, key, f"miss: the committed record cannot be read ({type(exc).__name__})")
        return None
    _explain(task, key, "hit from storage (committed when the transaction began)")
    return record


def _explain(task: Task[Any, Any], key: str | None, why: str) -> None:
    """One DEBUG line per call of a task: whether it was a hit or a miss, and why."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("task %r, key %r: %s", task.name, key, why)


def _transaction(task: Task[Any, Any], plan: _Plan, key: str) -> Transaction:
    """The transaction of a call that found nothing to read (or must recompute). Under
    a lock, a lapsed lock does not discard the result: the commit stays conditional."""
    level = plan.isolation_level(task._isolation_level)
    if plan.overwrite:
        _explain(task, key, "miss: refresh_cache recomputes the value")
    elif level is IsolationLevel.SERIALIZABLE:
        _explain(task, key, "checking again under the key's lock (SERIALIZABLE)")
    return plan.store.transaction(key, level, overwrite=plan.overwrite, keep_after_lapse=True)


def _persist_decision(
    task: Task[Any, Any], context: RunContext | None, settings: MoorageSettings
) -> bool:
    """The task's own setting, else its flow's, else settings, else: persist when cached."""
    if task.persist_result is not None:
        return task.persist_result
    if context is not None and context.persist_result is not None:
        return context.persist_result
    configured = settings.tasks_default_persist_result
    if configured is not None:
        return configured
    return task.cache_policy is not NO_CACHE


class Task(Generic[P, R]):
    """A function whose results are stored and reused; made by `task`."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        cache_policy: CachePolicy = _UNSET,
        cache_key_fn: Callable[[CacheContext, Any], str | None] | None = None,
        cache_expiration: dt.timedelta | None = None,
        refresh_cache: bool | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool = True,
        cache_version: str | None = None,
    ) -> None:
        if cache_key_fn is not None and cache_policy is not _UNSET:
            raise TypeError("give a task either cache_policy or cache_key_fn, not both")
        if cache_version is not None and result_storage_key is not None:
            raise TypeError(
                "cache_version changes cache keys, and result_storage_key replaces them: "
                "put the version in the key template instead"
            )
        if persist_result is None and asks_for_results(
            result_storage, result_serializer, result_storage_key, cache_key_fn
        ):
            persist_result = True  # as Prefect infers: where results go was configured
        if cache_key_fn is not None:
            cache_policy = CacheKeyFn(key_fn=cache_key_fn)
        elif cache_policy is _UNSET:
            cache_policy = NO_CACHE if persist_result is False else DEFAULT
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.cache_policy = cache_policy
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.result_storage_key = result_storage_key
        self.cache_result_in_memory = cache_result_in_memory
        self.cache_version = None if cache_version is None else str(cache_version)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self._names = plain_names(self._signature)
        level = getattr(cache_policy, "isolation_level", None)
        #: None: SERIALIZABLE where the store has a lock manager, else READ_COMMITTED.
        self._isolation_level = None if level is None else IsolationLevel(level)
        self._memo: tuple[Any, Any] | None = None  # (base store or settings, derived store)
        self._code_keys: dict[str, str] = {}  # by policy kind ("source", "code"), on first use
        self._travelled: dict[str, str] = {}  # the sender's, if this one was pickled

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    # -- travelling: by reference when importable, like the function it wraps ---------

    def __reduce__(self) -> tuple[Any, ...]:
        # The code keys travel too, so a worker that cannot read the source (a
        # notebook's function on a Dask or Ray worker) keys calls as the client does.
        travelled = {kind: self.source_key(kind) for kind in code_kinds(self.cache_policy)}
        qualname = importable_as(self, self.fn)
        if qualname is not None:  # by reference: the receiver imports its own copy
            return (find_task, (self.fn.__module__, qualname, travelled))
        return (rebuild_task, (type(self), self.fn, self._options(), travelled))

    def source_key(self, kind: str = "source") -> str:
        """The hash of this task's code that its policy puts in keys: `TASK_SOURCE`'s
        (``kind="source"``) or `CODE`'s (``"code"``). Computed here where the source can be
        read, else the one computed where the task was pickled."""
        key = self._code_keys.get(kind)
        if key is None:
            policy = code_kinds(self.cache_policy).get(kind)
            if policy is None:  # asked for a kind its own policy does not use
                policy = CODE if kind == "code" else TASK_SOURCE
            key = self._code_keys[kind] = policy.function_key(self.fn, self._travelled.get(kind))
        return key

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cache_policy": self.cache_policy,
            "cache_expiration": self.cache_expiration,
            "refresh_cache": self.refresh_cache,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "result_storage_key": self.result_storage_key,
            "cache_result_in_memory": self.cache_result_in_memory,
            "cache_version": self.cache_version,
        }

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        current = self._options()
        if "cache_key_fn" in options:
            current.pop("cache_policy")
        return Task(self.fn, **{**current, **options})

    # -- the plan, shared by both call paths ------------------------------------------

    def _store(self, context: RunContext | None, settings: MoorageSettings) -> ResultStore:
        """This task's store, derived from the flow's (or the default) store once."""
        base: Any = context.result_store if context is not None else None
        origin = base if base is not None else settings
        memo = self._memo
        if memo is not None and memo[0] is origin:
            derived: ResultStore = memo[1]
            return derived
        store = (base if base is not None else ResultStore()).update_for_task(self)
        self._memo = (origin, store)
        return store

    def _plan(self, args: Any, kwargs: Any) -> _Plan:
        plan = self._plan_without_key(args, kwargs)
        if plan.persist:
            plan.key = self._key(plan)
        return plan

    def _plan_without_key(self, args: Any, kwargs: Any) -> _Plan:
        outer = current_context()
        settings = get_settings()  # read once per call: it checks the environment
        return _Plan(
            store=self._store(outer, settings),
            parameters=bind(self._signature, self._names, args, kwargs),
            persist=_persist_decision(self, outer, settings),
            key=None,
            overwrite=bool(self.refresh_cache),
        )

    def _key(self, plan: _Plan) -> str | None:
        key, unhashable = self._key_or_reason(plan)
        if unhashable is not None:
            warnings.warn(f"task {self.name!r} runs uncached: {unhashable}", RuntimeWarning, 4)
        return key

    def _key_or_reason(self, plan: _Plan) -> tuple[str | None, str | None]:
        """The call's key, or None and why a value could not be hashed."""
        if self.result_storage_key is not None:
            with run_context(plan.context()):  # the template reads the parameters from here
                return plan.store.storage_key_fn(), None
        try:
            key = self.cache_policy.compute_key(
                CacheContext(fn=self.fn, parameters=plan.parameters, task=self)
            )
        except UnhashableValue as exc:
            return None, _unhashable_reason(exc, plan.parameters)
        if key is not None and self.cache_version is not None:
            key = stable_hash("cache version", self.cache_version, key)
        return key, None

    def explain_key(self, *args: P.args, **kwargs: P.kwargs) -> KeyExplanation:
        """The key a call with these arguments would use, and each part it is made of
        (the parameters and the hasher of each, the source, the cache version). Nothing
        runs and nothing is read. Compare two calls with ``a.compare(b)`` or
        ``a.differences(b)``."""
        plan = self._plan_without_key(args, kwargs)
        key, unhashable = self._key_or_reason(plan)
        note = unhashable or ""
        if self.result_storage_key is not None:
            parts = [KeyPart("storage key template", "", self.result_storage_key, key or "")]
        else:
            context = CacheContext(fn=self.fn, parameters=plan.parameters, task=self)
            parts = self.cache_policy.explain(context)
            if self.cache_version is not None:
                parts.append(
                    KeyPart(
                        "cache version", "", self.cache_version, stable_hash(self.cache_version)
                    )
                )
        if not plan.persist:
            note = note or "results are not persisted (persist_result=False), so nothing is read"
        elif key is None and not note:
            note = "the cache policy gives no key: the call runs uncached"
        return KeyExplanation(str(self.name), self._policy_label(), key, tuple(parts), note)

    def _policy_label(self) -> str:
        if self.result_storage_key is not None:
            return f"result_storage_key {self.result_storage_key!r}"
        return self.cache_policy.label()

    def _memory_hit(self, store: ResultStore, key: str) -> Any:
        record = store.memory_hit(key)
        if record is not None:
            _explain(self, key, "hit from memory")
        return record

    # -- the two call paths ----------------------------------------------------------
    # A committed record answers first, with one read (a memory-cache hit costs no I/O);
    # only a miss opens the transaction, which checks again and runs the function.

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_async:
            return cast(R, self._acall(args, kwargs))
        plan = self._plan(args, kwargs)
        if plan.key is None:
            _explain(self, None, "not cached: no cache key")
            with run_context(plan.context()):
                return self.fn(*args, **kwargs)
        if not plan.overwrite:
            record = self._memory_hit(plan.store, plan.key) or run_sync(
                _stored_op(self, plan.store, plan.key)
            )
            if record is not None:
                return cast(R, record.result)
        txn = _transaction(self, plan, plan.key)
        with txn:
            if txn.is_committed():
                record = run_sync(_committed_op(self, txn, plan.key))
                if record is not None:
                    return cast(R, record.result)
            with run_context(plan.context()):
                result = self.fn(*args, **kwargs)
            txn.stage(result, expiration=self.cache_expiration)
        return cast(R, txn.record.result) if txn.record is not None else result

    async def _acall(self, args: Any, kwargs: Any) -> Any:
        fn = cast(Callable[..., Awaitable[Any]], self.fn)
        plan = self._plan(args, kwargs)
        if plan.key is None:
            _explain(self, None, "not cached: no cache key")
            with run_context(plan.context()):
                return await fn(*args, **kwargs)
        if not plan.overwrite:
            record = self._memory_hit(plan.store, plan.key) or await run_async(
                _stored_op(self, plan.store, plan.key)
            )
            if record is not None:
                return record.result
        txn = _transaction(self, plan, plan.key)
        async with txn:
            if txn.is_committed():
                record = await run_async(_committed_op(self, txn, plan.key))
                if record is not None:
                    return record.result
            with run_context(plan.context()):
                result = await fn(*args, **kwargs)
            txn.stage(result, expiration=self.cache_expiration)
        return txn.record.result if txn.record is not None else result


def _unhashable_reason(exc: UnhashableValue, parameters: dict[str, Any]) -> str:
    """The warning for a call whose key cannot be made: which parameter, and the fixes."""
    name = exc.path[0] if exc.path and exc.path[0] in parameters else None
    if name is None:
        return f"its cache key cannot be made: {exc}. Give a cache_key_fn"
    where = "".join(f"[{part!r}]" for part in exc.path[1:])
    return (
        f"parameter {name!r}{where} cannot be hashed for its cache key: {exc}. Register a "
        "hasher for its type (moorage.keys.register_hasher, or a plugin's register_hashers "
        f"hook), leave it out of the key (cache_policy=INPUTS - {name!r}), or give a "
        "cache_key_fn"
    )


def find_task(module: str, qualname: str, travelled: dict[str, str]) -> Task[Any, Any]:
    """Unpickle a task sent by reference: the receiver's own object, by its name. Where
    the receiver cannot read the source, it keys calls with the sender's code keys."""
    found = attribute_path(importlib.import_module(module), qualname)
    if not isinstance(found, Task):
        raise TypeError(f"{module}.{qualname} is {type(found).__name__}, not a moorage task")
    for kind, key in travelled.items():
        found._travelled.setdefault(kind, key)
    return found


def rebuild_task(
    cls: type[Task[Any, Any]], fn: Any, options: dict[str, Any], travelled: dict[str, str]
) -> Task[Any, Any]:
    """Unpickle a task sent by value (a local function, a notebook's): built again from
    its function and options, keyed with the code keys computed where it was sent."""
    rebuilt = rebuild(cls, fn, options)
    rebuilt._code_keys.update(travelled)
    return cast(Task[Any, Any], rebuilt)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = ...,
    cache_policy: CachePolicy = ...,
    cache_key_fn: Callable[[CacheContext, Any], str | None] | None = ...,
    cache_expiration: dt.timedelta | None = ...,
    refresh_cache: bool | None = ...,
    persist_result: bool | None = ...,
    result_storage: Any = ...,
    result_serializer: Any = ...,
    result_storage_key: str | None = ...,
    cache_result_in_memory: bool = ...,
    cache_version: str | None = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a task: ``@task`` or ``@task(cache_expiration=..., ...)``.

    Options: ``cache_policy`` (default: inputs + source), ``cache_key_fn(context,
    parameters)``, ``cache_expiration``, ``refresh_cache`` (always run, then store),
    ``persist_result`` (False: never store; None: store when caching), ``result_storage``,
    ``result_serializer``, ``result_storage_key`` (a template such as
    ``"{parameters[x]}-{fn.__name__}"``; replaces the cache key), ``cache_result_in_memory``,
    ``cache_version`` (change it to invalidate every record the task stored before).
    """
    if fn is not None:
        return Task(fn, **options)
    return lambda f: Task(f, **options)
