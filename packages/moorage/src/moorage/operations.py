"""Operations written once, run by a sync or an async driver.

An operation is a generator that asks for its I/O with ``yield from`` a `Call`, which
names the blocking method and its async twin side by side::

    head = yield from Call(storage.read_head, storage.aread_head, key, size)

`run_sync` calls the first, `run_async` awaits the second; the value comes back as the
result of the ``yield from``. The pair is checked by the type checker against the
arguments and the result (a reader's "find usages" of ``aread_head`` finds this line).
Exceptions raised by a call are thrown back into the operation at that line, so it can
handle them where it asked. This keeps every rule in one place, leaves the sync and
async shells one line each, and means a sync call never starts an event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar

__all__ = ["Call", "Op", "concurrently", "in_thread", "run_async", "run_sync"]

T = TypeVar("T")
P = ParamSpec("P")


class Call(Generic[T]):
    """One I/O request of an operation: ``sync(*args, **kwargs)`` when driven by
    `run_sync`, ``await asynchronous(*args, **kwargs)`` when driven by `run_async`.

    ``yield from`` a call inside an operation gives its result, typed ``T``. A call may
    be made once and asked for again (a retried attempt, for one).
    """

    __slots__ = ("args", "asynchronous", "kwargs", "sync")

    def __init__(
        self,
        sync: Callable[P, T],
        asynchronous: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        self.sync: Callable[..., T] = sync
        self.asynchronous: Callable[..., Awaitable[T]] = asynchronous
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Generator[Call[T], Any, T]:
        result: T = yield self
        return result

    def __repr__(self) -> str:
        name = getattr(self.sync, "__qualname__", repr(self.sync))
        return f"Call({name}, args={self.args!r}, kwargs={self.kwargs!r})"


#: An operation returning ``T``: a generator of `Call` requests.
Op: TypeAlias = Generator[Call[Any], Any, T]


def run_sync(op: Op[T]) -> T:
    """Drive an operation with blocking calls."""
    try:
        call = next(op)
        while True:
            try:
                value = call.sync(*call.args, **call.kwargs)
            except Exception as exc:
                call = op.throw(exc)
            else:
                call = op.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(op: Op[T]) -> T:
    """Drive an operation with the calls' async twins."""
    try:
        call = next(op)
        while True:
            try:
                value = await call.asynchronous(*call.args, **call.kwargs)
            except Exception as exc:
                call = op.throw(exc)
            else:
                call = op.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``await asyncio.to_thread(fn, *args, **kwargs)``. asyncio is imported here, by
    code that is already running async, so that importing moorage does not cost its
    import."""
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


def concurrently(ops: Sequence[Op[T]], limit: int) -> Call[list[T]]:
    """A call that runs the operations ``ops`` at most ``limit`` at once and gives their
    results in order: driven by `run_sync`, in a pool of ``limit`` threads (or one after
    another when ``limit`` is 1); by `run_async`, as concurrent tasks of the running
    loop. Every operation runs to its end, even after one has failed (none is left
    running behind the caller); then the first failure is raised."""
    return Call(_all_sync, _all_async, list(ops), max(1, limit))


def _first_failure(outcomes: list[T | BaseException]) -> list[T]:
    results: list[T] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


def _outcome(op: Op[T]) -> T | BaseException:
    try:
        return run_sync(op)
    except Exception as exc:
        return exc


def _all_sync(ops: list[Op[T]], limit: int) -> list[T]:
    if limit == 1 or len(ops) <= 1:
        return _first_failure([_outcome(op) for op in ops])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(limit, len(ops)), thread_name_prefix="moorage") as pool:
        return _first_failure(list(pool.map(_outcome, ops)))


async def _all_async(ops: list[Op[T]], limit: int) -> list[T]:
    import asyncio

    bound = asyncio.Semaphore(limit)

    async def one(op: Op[T]) -> T:
        async with bound:
            return await run_async(op)

    outcomes = await asyncio.gather(*(one(op) for op in ops), return_exceptions=True)
    return _first_failure(outcomes)
