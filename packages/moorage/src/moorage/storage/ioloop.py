"""Where and for how long an object store's operations run.

Each operation of `moorage.storage.objectstore.ObjectStorage` is one coroutine, and it
always runs on fsspec's own I/O loop thread, where the filesystem and its HTTP session
live. The sync method blocks on it (`run_on_loop`); the async method hands it over and
awaits the result without blocking the caller's loop (`await_on_loop`), so many
concurrent ``awrite``/``aread`` calls overlap for real, and no client is ever bound to
(or left open on) a caller's short-lived loop.

No call hangs: each backend bounds every request attempt with its timeouts and, as a
whole, `within` its `attempt_limit` (aiohttp's socket timeouts do not cover a server
that stopped reading a request body); on top of that an operation whose size is known
runs `within` an overall limit derived from the same timeouts and attempts
(`overall_limit`), past which it is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fsspec.asyn import AsyncFileSystem, sync

__all__ = ["MIB", "attempt_limit", "await_on_loop", "overall_limit", "run_on_loop", "within"]

_T = TypeVar("_T")

MIB = 1024 * 1024


def attempt_limit(connect: float, read: float, nbytes: int) -> float:
    """Seconds one attempt of a request with an ``nbytes`` body may take: ``connect`` to
    connect, then ``read`` to wait for the answer, plus ``read`` per MiB of body (a body
    moving slower than 1 MiB per ``read`` seconds counts as stalled). Each backend's
    transport runs every attempt `within` it, and fails past it with its client's own
    timeout error, which the client retries within its retry limit."""
    return connect + read * (1 + nbytes / MIB)


def overall_limit(
    *, connect: float, read: float, attempts: int, backoff: float, nbytes: int, rounds: int = 3
) -> float:
    """The longest an operation moving ``nbytes`` may take, all its requests together.

    Each attempt of a request may spend ``connect`` seconds connecting and ``read``
    seconds waiting for the server, plus ``read`` seconds per MiB of body it sends (a body
    moving slower than 1 MiB per ``read`` seconds counts as stalled). An operation makes
    up to ``rounds`` small requests one after the other (create, complete, a bucket
    check...), and its payload may be cut into parts sent in sequence: twice the
    payload's MiB in rounds covers those. ``backoff`` is the most the client sleeps
    between attempts of one request, in total. Generous on purpose: this limit catches
    hangs, the per-request timeouts catch slowness.
    """
    mib = nbytes / MIB
    return attempts * (connect + read) * (rounds + 2 * mib) + backoff * (rounds + mib)


def run_on_loop(fs: AsyncFileSystem, work: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """``work()`` run on the filesystem's I/O loop, this thread blocking until it is done."""
    return sync(fs.loop, work)  # type: ignore[no-any-return]


async def await_on_loop(fs: AsyncFileSystem, work: Coroutine[Any, Any, _T]) -> _T:
    """``work`` run on the filesystem's I/O loop, awaited from the caller's loop."""
    future = asyncio.run_coroutine_threadsafe(work, fs.loop)
    return await asyncio.wrap_future(future)


async def within(
    limit: float | None, work: Coroutine[Any, Any, _T], expired: Callable[[float], Exception]
) -> _T:
    """``await work``, cancelled once ``limit`` seconds have passed (None: no limit); then
    ``expired(limit)`` is raised, from the cancellation's TimeoutError."""
    if limit is None:
        return await work
    timer = asyncio.timeout(limit)
    try:
        async with timer:
            return await work
    except TimeoutError as exc:
        if not timer.expired():
            raise
        raise expired(limit) from exc
