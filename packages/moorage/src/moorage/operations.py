"""Operations written once, run by a sync or an async driver.

An operation is a generator that yields the I/O it needs as ``(target, method, args)``
(or ``(target, method, args, kwargs)``) and returns its result. `run_sync` calls
``target.method(*args)``; `run_async` awaits ``target.a<method>(*args)``
(``read_path`` -> ``aread_path``, ``wait_until_free`` -> ``await_until_free``).
Exceptions raised by a call are thrown back into the operation, so it can handle them
where it asked. This keeps every rule in one place, leaves the sync and async shells
one line each, and means a sync call never starts an event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

__all__ = ["Call", "Op", "in_thread", "run_async", "run_sync"]

T = TypeVar("T")

#: One I/O request of an operation: call ``target.method(*args)`` (or its ``a`` twin),
#: with ``**kwargs`` when a fourth item is given.
Call = tuple[Any, str, tuple[Any, ...]] | tuple[Any, str, tuple[Any, ...], dict[str, Any]]
Op = Generator[Call, Any, T]


def run_sync(op: Op[T]) -> T:
    """Drive an operation with blocking calls."""
    try:
        call = next(op)
        while True:
            try:
                if len(call) == 3:
                    value = getattr(call[0], call[1])(*call[2])
                else:
                    value = getattr(call[0], call[1])(*call[2], **call[3])
            except Exception as exc:
                call = op.throw(exc)
            else:
                call = op.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(op: Op[T]) -> T:
    """Drive an operation with the targets' async twins."""
    try:
        call = next(op)
        while True:
            try:
                if len(call) == 3:
                    value = await getattr(call[0], "a" + call[1])(*call[2])
                else:
                    value = await getattr(call[0], "a" + call[1])(*call[2], **call[3])
            except Exception as exc:
                call = op.throw(exc)
            else:
                call = op.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def in_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """``await asyncio.to_thread(fn, *args)``. asyncio is imported here, by code that is
    already running async, so that importing moorage does not cost its import."""
    import asyncio

    return await asyncio.to_thread(fn, *args)
