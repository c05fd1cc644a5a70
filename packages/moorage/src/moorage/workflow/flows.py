"""The ``@moorage.flow`` decorator: a function that sets result defaults for the tasks
it calls. Its result storage, serializer, ``persist_result`` and
``cache_result_in_memory`` reach them through the run context (`moorage.store.context`),
which is also what `moorage.results.get_result_store` and `should_persist_result` read.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from moorage.results import get_result_store
from moorage.store.context import RunContext, run_context
from moorage.workflow.calls import asks_for_results, bind, importable_as, plain_names, rebuild

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function that sets result defaults for the tasks it calls; made by `flow`."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        if persist_result is None and asks_for_results(result_storage, result_serializer):
            persist_result = True  # as Prefect infers: its tasks then persist too
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self._names = plain_names(self._signature)

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        qualname = importable_as(self, self.fn)
        if qualname is not None:
            return qualname
        options = {
            "name": self.name,
            "persist_result": self.persist_result,
            "result_storage": self.result_storage,
            "result_serializer": self.result_serializer,
            "cache_result_in_memory": self.cache_result_in_memory,
        }
        return (rebuild, (type(self), self.fn, options))

    def _context(self, args: Any, kwargs: Any) -> RunContext:
        return RunContext(
            result_store=get_result_store().update_for_flow(self),
            persist_result=self.persist_result,
            parameters=bind(self._signature, self._names, args, kwargs),
            is_task=False,
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_async:
            return cast(R, self._acall(args, kwargs))
        with run_context(self._context(args, kwargs)):
            return self.fn(*args, **kwargs)

    async def _acall(self, args: Any, kwargs: Any) -> Any:
        fn = cast(Callable[..., Awaitable[Any]], self.fn)
        with run_context(self._context(args, kwargs)):
            return await fn(*args, **kwargs)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...
@overload
def flow(
    *,
    name: str | None = ...,
    persist_result: bool | None = ...,
    result_storage: Any = ...,
    result_serializer: Any = ...,
    cache_result_in_memory: bool = ...,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...
def flow(fn: Any = None, /, **options: Any) -> Any:
    """Make a function a flow: the tasks it calls take its result options as defaults."""
    if fn is not None:
        return Flow(fn, **options)
    return lambda f: Flow(f, **options)
